"""Natural language understanding: one user message plus the dialogue context -> dialogue acts.

Design, and why:

- **Rules over a precomputed catalog index, no model.** The acts a recommender dialogue needs are
  few (answer, inform, name an item, react to a list, restart, help, quit), their wording is
  formulaic, and their slots come from a closed vocabulary (the catalog's attribute names and item
  titles). Exact lookups in dictionaries built once in the constructor keep a message well under
  a few milliseconds on MovieLens' 9,742 titles, and every decision can be traced.
- **Word lists are data.** Every word list and phrase table lives in `lexicon.toml`
  (`crs.language.lexicon`); this module holds only the rules that use them.
- **Normalisation first** (`crs.language.text`). Lower case, accents folded, HTML tags and control
  characters dropped, apostrophes removed ("80's" -> "80s", "don't" -> "dont"), hyphens split
  ("sci-fi" -> "sci fi"), a light plural stemmer ("comedies" -> "comedy") applied to both the
  catalog and the message, and a small synonym table ("scary" -> horror, "nineties" -> 90s) used
  only for phrases the catalog does not contain itself.
- **Duplicate names resolve to the most used attribute** (LastFM has "80s" and "80's", MovieLens
  the genre "Comedy" and the tag "comedy"): the labelled utterance sets follow the same rule.
- **Fuzzy matching is a fallback with a bar** (rapidfuzz, `crs.language.titles`). Titles: a
  match at or above `FUZZY_ACCEPT` is taken, one between `FUZZY_ASK` and that is asked back ("Did
  you mean Toy Story (1995)?") rather than guessed. Attribute names: per word, against names with
  the same first two letters. Items are looked for after a cue ("like X", "similar to X", quotes)
  or, without a cue, as exact titles of two or more content words, as a message that is nothing
  but a title, and as a run of words the writer capitalised, read whole ("Disney's Coco", "Thor:
  Ragnarok"; "Motherless Brooklyn" is not "Brooklyn"). A lone lower-case word is never a title
  in passing, because LastFM has artists called "Drive", "Japan" and "Lipstick". A sequel the
  catalog lacks ("Frozen 2") is said to be missing rather than read as the first film.
- **Negation is scoped to a clause** (`crs.language.negation`). A cue ("no", "not", "hate",
  "anything but", "except", ...) makes every later attribute or item of its clause unwanted until
  a positive cue ("but I love") or a clause boundary (punctuation, "but", "though", "instead").
- **The pending question decides what yes/no mean.** With an `Ask` pending, "yeah", "nope",
  "dunno", "whatever" are answers, and naming the asked attribute answers it ("I love comedies"
  -> yes). With a list on screen, ordinals and bare numbers point into it ("#3 looks good").
- **Optional embeddings.** `nearest_attributes(word, k)` (for example from `crs.retrieval`) maps
  content words the catalog does not use ("chill", "spooky") to attributes; only matches at or
  above `embedding_threshold` count. Everything works without it.
- **Robust.** Any string is accepted. Only the first `MAX_CHARS` characters are read (a rambling
  message states its wishes early; reading further costs time and adds noise): the result says
  `truncated=True` then. No input raises.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from crs.language.acts import (
    DialogueAct,
    DontCare,
    Help,
    MentionItem,
    MoreLike,
    RejectItem,
    Restart,
    Understanding,
    Unknown,
)
from crs.language.lexicon import LEXICON, Phrase
from crs.language.negation import first_clause, is_boundary, negated_at
from crs.language.text import (
    BOUNDARY_PUNCTUATION,
    DECADE_LONG,
    DECADE_SHORT,
    SENTENCE_OPENING_ALONE,
    STOPWORDS,
    capitalised,
    closest,
    has_phrase,
    normalize_key,
    possessives,
    singular,
    tokenize,
)
from crs.language.titles import (
    MAX_TITLE_WORDS,
    Popularity,
    TitleIndex,
    digits_for_numerals,
    title_key,
    title_keys,
)
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    GiveUp,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
)

NearestAttributes = Callable[[str, int], list[tuple[int, float]]]

MAX_CHARS = 2000  # characters of a message that are read; the rest is ignored (see module docstring)
MAX_ATTRIBUTE_WORDS = 4  # longest attribute name, in words, that is looked up
FUZZY_ACCEPT = 0.86
FUZZY_ASK = 0.72
FUZZY_TOKEN = 0.84
MAX_FUZZY_TOKENS = 40  # per message: bounds the time a long message of unknown words can take
SYNONYMS = LEXICON.synonyms

# "the first frozen movie": these words before a title mean the film of that title itself.
_FIRST_FILM_WORDS = frozenset({"first", "original"})
# Joining words that introduce something other than the title's own words ("by Disney", "with
# Jim Carrey", "is great"): a capitalised run may be cut before them.
_TITLE_RUN_CUTS = frozenset({"by", "with", "is", "i", "vs", "v"})
_FILM_WORDS = frozenset({"movie", "movies", "film", "films", "one"})
# After these, one capitalised word is a person ("a comedy with Julia"), not a one-word title.
_PERSON_CUES = frozenset({"with", "starring", "featuring"})
_SORRY = "Sorry, I didn't quite get that. Tell me a genre, a decade or a title you like, or type 'help'."


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int  # exclusive, in token positions
    kind: str  # "attribute" | "item"
    value: int
    confidence: float


def _attribute_keys(catalog: Catalog, support: Counter[int], min_support: int) -> dict[str, int]:
    """Attribute names -> index; the most used attribute wins a shared key."""
    keys: dict[str, int] = {}
    # A catalog whose attributes are all rarer than `min_support` keeps its most used ones.
    floor = min(min_support, max(support.values(), default=0))
    for attribute in catalog.attributes:
        if support[attribute.index] < floor:
            continue
        key = normalize_key(attribute.name)
        if (
            not key
            or key.isdigit()
            or key in STOPWORDS
            or key in LEXICON.yes_words
            or key in LEXICON.no_words
        ):
            continue
        # Folksonomy tags such as "i love" or "80s stuff" swallow ordinary phrases: a name with a
        # filler word in it must be widely used to count.
        if " " in key and support[attribute.index] < 100 and any(w in STOPWORDS for w in key.split()):
            continue
        best = keys.get(key)
        if best is None or support[attribute.index] > support[best]:
            keys[key] = attribute.index
    aliases: dict[str, int] = {}
    for key, index in keys.items():
        long = DECADE_LONG.match(key)
        if long:
            aliases.setdefault(f"{long.group(2)}0s", index)
        short = DECADE_SHORT.match(key)
        if short:
            century = "20" if short.group(1) in "01" else "19"
            aliases.setdefault(f"{century}{short.group(1)}0s", index)
    for alias, index in aliases.items():
        keys.setdefault(alias, index)
    # A rare compound tag ("70s rock") loses to its widely used parts ("70s", "rock").
    for key in [k for k in keys if " " in k]:
        parts = key.split()
        if all(p in keys for p in parts) and support[keys[key]] * 5 < min(support[keys[p]] for p in parts):
            del keys[key]
    return keys


def _synonym_targets(keys: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Synonym key -> the attributes it means, for synonyms the catalog does not have as names."""
    targets = {
        normalize_key(source): tuple(keys[normalize_key(t)] for t in names if normalize_key(t) in keys)
        for source, names in SYNONYMS.items()
    }
    return {key: values for key, values in targets.items() if values and key not in keys}


# One-word titles that are everyday words first ("Yes", "Lol", "Thing"): never read as titles alone.
_EVERYDAY = STOPWORDS | LEXICON.function_words | LEXICON.hesitations | LEXICON.yes_words | LEXICON.no_words


def _key_without_colons(tokens: list[str]) -> str:
    return title_key(t for t in tokens if t not in (":", ","))


def _first_clause_end(tokens: list[str]) -> int:
    """The token position where the first non-empty clause ends (see `first_clause`)."""
    seen_word = False
    for position, token in enumerate(tokens):
        if is_boundary(token):
            if seen_word:
                return position
            continue
        seen_word = True
    return len(tokens)


def _opens_with_article(title: str, article: str) -> bool:
    """Whether a catalog title opens with `article`, written before it or moved behind it
    ("Heat, The (2013)")."""
    main = re.sub(r"\s*\(.*$", "", title).strip().lower()
    return main.startswith(f"{article} ") or main.endswith(f", {article}")


def _opens_with_indefinite(title: str) -> bool:
    """ "A Bug's Life" or MovieLens's "Bug's Life, A (1998)"."""
    return _opens_with_article(title, "a") or _opens_with_article(title, "an")


def _not_in_catalog(words: list[str]) -> str:
    title = " ".join(word.capitalize() for word in words)
    return f"I don't know {title}: it is not in my catalog. Tell me another title, or a genre or a mood."


class Understander:
    """Reads user messages against one catalog. Build once per catalog (under a tenth of a second)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        nearest_attributes: NearestAttributes | None = None,
        embedding_threshold: float = 0.6,
        min_support: int = 5,
        popularity: Popularity | None = None,
    ) -> None:
        self.catalog = catalog
        self.nearest_attributes = nearest_attributes
        self.embedding_threshold = embedding_threshold
        support = Counter(a for item in catalog.items for a in item.attributes)
        self.support = support

        keys = _attribute_keys(catalog, support, min_support)
        self._attribute_keys = keys
        self._synonyms = _synonym_targets(keys)
        # Decade words always mean the decade, even where a folksonomy has a tag "nineties".
        for source, targets in SYNONYMS.items():
            target = normalize_key(targets[0])
            if DECADE_SHORT.match(target) and target in keys:
                keys[normalize_key(source)] = keys[target]
        # Fuzzy candidates: single-word names of attributes in real use, bucketed by first two letters.
        # Reverse alphabetical order: of equally close names the alphabetically last is taken, as
        # difflib's get_close_matches did when this reader was tuned.
        buckets: dict[str, list[str]] = {}
        for key, index in keys.items():
            if " " not in key and len(key) >= 4 and key.isalpha() and support[index] >= 5:
                buckets.setdefault(key[:2], []).append(key)
        self._fuzzy_attributes = {prefix: sorted(names, reverse=True) for prefix, names in buckets.items()}
        # With the catalog's popularity a bare title means its best-known film, and near ties
        # among films of one title are asked back; without it, attribute counts stand in.
        self._titles = TitleIndex.from_catalog(catalog, popularity)

    # --- public ---------------------------------------------------------------------------------

    def understand(self, text: object, context: SystemAction | None = None) -> Understanding:
        """The acts of `text` given the system's last action. Never raises on any input."""
        try:
            return self._understand(text, context)
        except Exception:  # pragma: no cover - a last line of defence for the chat, never expected
            return Understanding(acts=(Unknown(),), confidence=0.0, clarify=_SORRY)

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)

    # --- steps ----------------------------------------------------------------------------------

    def _understand(self, text: object, context: SystemAction | None) -> Understanding:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        truncated = len(text) > MAX_CHARS
        tokens = tokenize(text[:MAX_CHARS])
        flags = capitalised(text[:MAX_CHARS])
        openers = [k for k, flag in enumerate(flags) if flag == SENTENCE_OPENING_ALONE]
        cased = [0 if flag == SENTENCE_OPENING_ALONE else flag for flag in flags]
        owners = possessives(text[:MAX_CHARS])
        words = [t for t in tokens if t not in BOUNDARY_PUNCTUATION]
        if not words:
            return Understanding(acts=(Unknown(),), confidence=0.0, clarify=_SORRY, truncated=truncated)
        pending = context.attribute if isinstance(context, Ask) else None
        shown = context.items if isinstance(context, Recommend) else ()
        if isinstance(context, GiveUp):
            pending, shown = None, ()

        acts: list[DialogueAct] = []
        confidence = 1.0
        clarify: str | None = None

        # Commands first: they override everything else in a short message.
        short = len(words) <= 8
        if short and has_phrase(words, LEXICON.restart_phrases):
            return Understanding(acts=(Restart(),), confidence=0.95, truncated=truncated)
        if short and has_phrase(words, LEXICON.quit_phrases) and not has_phrase(words, LEXICON.quit_vetoes):
            return Understanding(acts=(QuitReply(),), confidence=0.9, truncated=truncated)
        if (
            short
            and has_phrase(words, LEXICON.help_phrases)
            or (len(words) == 1 and words[0] in LEXICON.help_words)
        ):
            return Understanding(acts=(Help(),), confidence=0.9, truncated=truncated)

        # Answers to the pending question read the first clause.
        answer = self._answer(first_clause(tokens)) if pending is not None else None

        spans, span_clarify, choices, choices_liked = self._spans(tokens, shown, cased, owners, openers)
        clarify = clarify or span_clarify
        polarity = [not negated_at(tokens, span.start) for span in spans]

        # "I'd rather not have anything scary", said to "Action?": the clause the answer was read
        # from is about another attribute, and means what it says about that one.
        if answer in ("yes", "no"):
            clause_end = _first_clause_end(tokens)
            if (
                tokens[0] not in LEXICON.yes_words
                and tokens[0] not in LEXICON.no_words
                and any(
                    span.kind == "attribute" and span.value != pending and span.start < clause_end
                    for span in spans
                )
            ):
                answer = None

        wanted: list[int] = []
        unwanted: list[int] = []
        for span, positive in zip(spans, polarity, strict=True):
            confidence = min(confidence, span.confidence)
            if span.kind == "attribute":
                (wanted if positive else unwanted).append(span.value)
        # Naming the asked attribute answers the question.
        if pending is not None and answer is None:
            if pending in wanted:
                answer = Answer.YES
            elif pending in unwanted:
                answer = Answer.NO
        if pending is not None:
            wanted = [a for a in wanted if a != pending]
            unwanted = [a for a in unwanted if a != pending]

        # Reactions to a list on screen.
        if shown:
            reaction, reaction_clarify = self._reaction(words, spans, polarity, shown)
            acts.extend(reaction)
            clarify = clarify or reaction_clarify

        if answer == "dont_care":
            acts.insert(0, DontCare())
        elif answer is not None:
            acts.insert(0, AnswerReply(Answer(answer)))

        reacted_items = {getattr(a, "item", None) for a in acts}
        for span, positive in zip(spans, polarity, strict=True):
            if span.kind == "item" and span.value not in reacted_items:
                acts.append(MentionItem(item=span.value, liked=positive))
                reacted_items.add(span.value)

        # Leftover content words -> embeddings, when available.
        if self.nearest_attributes is not None:
            extra = self._embedded(
                tokens, spans, {*wanted, *unwanted, *([] if pending is None else [pending])}
            )
            for index, similarity, positive in extra:
                (wanted if positive else unwanted).append(index)
                confidence = min(confidence, similarity)

        wanted = list(dict.fromkeys(wanted))
        unwanted = [a for a in dict.fromkeys(unwanted) if a not in wanted]
        if wanted or unwanted:
            acts.append(InformReply(attributes=tuple(wanted), unwanted=tuple(unwanted)))

        if not acts:
            return Understanding(
                acts=(Unknown(),),
                confidence=0.0,
                clarify=clarify or _SORRY,
                truncated=truncated,
                choices=choices if clarify else (),
                choices_liked=choices_liked,
            )
        liked_film = any(isinstance(act, MentionItem) and act.liked for act in acts)
        return Understanding(
            acts=tuple(acts),
            confidence=confidence,
            clarify=clarify,
            truncated=truncated,
            choices=choices if clarify else (),
            choices_liked=choices_liked,
            changes_mind=bool(wanted or liked_film) and has_phrase(words, LEXICON.change_of_mind_phrases),
        )

    def _answer(self, clause: list[str]) -> str | None:
        if not clause:
            return None
        head = clause[:6]
        if has_phrase(head, LEXICON.dont_care_phrases):
            return "dont_care"
        if has_phrase(head, LEXICON.dont_know_phrases):
            return "dont_know"
        if has_phrase(head, LEXICON.no_phrases):
            return "no"
        first = clause[0]
        no_words = LEXICON.no_words
        if first in no_words and (
            len(clause) == 1 or clause[1] in no_words or clause[1] in LEXICON.after_answer_words
        ):
            return "no"
        if first in LEXICON.yes_words or has_phrase(head[:4], LEXICON.yes_phrases):
            return "yes"
        if all(token in LEXICON.hesitations for token in clause):
            # "hmm" alone is thinking aloud: unsure. Before other words it only leads them in
            # ("hmm actually no sci-fi, a romance" is a wish, not a "don't know").
            return "dont_know" if "hmm" in clause else None
        if len(clause) >= 2 and clause[0] in LEXICON.hesitations:
            return self._answer(clause[1:])
        return None

    def _spans(
        self,
        tokens: list[str],
        shown: tuple[int, ...],
        cased: list[int],
        owners: frozenset[str],
        openers: list[int],
    ) -> tuple[list[_Span], str | None, tuple[int, ...], bool]:
        """Items and attributes mentioned, left to right, without overlaps; the question to ask
        back, if any, with the items it offers and whether they were named as liked. `openers`:
        positions of sentences' capitalised first words that no capitalised word follows."""
        spans: list[_Span] = []
        clarify: str | None = None
        choices: tuple[int, ...] = ()
        taken = [t in BOUNDARY_PUNCTUATION for t in tokens]
        stems = [singular(t) for t in tokens]
        n = len(tokens)
        dated: set[int] = set()  # item spans whose film a year after the title chose

        def take(span: _Span) -> None:
            if span.kind == "item" and span.value in self._titles.namesakes:
                chosen = self._namesake_by_words(tokens, span)
                if chosen is not None:
                    span = _Span(span.start, span.end, "item", chosen, span.confidence)
                    dated.add(len(spans))
            if span.kind == "item" and span.value in self._titles.namesakes and span.end < n:
                # "Frozen (2010)" or "heat 1995": the year says which film of the title.
                year = tokens[span.end]
                chosen = self._titles.namesake_of_year(span.value, int(year)) if year.isdigit() else None
                if chosen is not None and not taken[span.end]:
                    span = _Span(span.start, span.end + 1, "item", chosen, span.confidence)
                    dated.add(len(spans))
            spans.append(span)
            for k in range(span.start, span.end):
                taken[k] = True

        # Titles of the items on screen, even one-word ones: the user is looking at them.
        if shown:
            on_screen = {key: item for item in shown for key in title_keys(self.catalog.items[item].title)}
            for length in range(MAX_TITLE_WORDS, 0, -1):
                for i in range(0, n - length + 1):
                    key = title_key(tokens[i : i + length])
                    if key in on_screen and not any(taken[i : i + length]):
                        take(_Span(i, i + length, "item", on_screen[key], 1.0))
        # Titles the writer capitalised ("I loved Get Out", "Disney's Coco").
        for i in range(n):
            if cased[i] and not taken[i]:
                found, note = self._capitalised_title_at(tokens, cased, taken, i, owners)
                if found is not None:
                    take(found)
                elif note is not None and clarify is None:
                    clarify = note
        # "Braveheart is one I haven't seen": a sentence's first word, capitalised, as its subject.
        for i in openers:
            # ... or as the first of a list: "Elf, Groundhog Day, Home Alone".
            listed = i + 2 < n and tokens[i + 1] in (",", "and", "or") and cased[i + 2] == 1
            if not taken[i] and i + 1 < n and (tokens[i + 1] in LEXICON.title_subject_verbs or listed):
                subject = self._one_word_title(tokens[i])
                if subject is not None:
                    take(_Span(i, i + 1, "item", subject, 1.0))
        # "the first frozen movie", "the original jumanji": the film of the title the words name.
        for i in range(n - 1):
            if tokens[i] in _FIRST_FILM_WORDS and not taken[i]:
                found = self._first_film_after(tokens, taken, i)
                if found is not None:
                    take(found)
        # Cued titles (exact, then fuzzy), before attributes.
        for start, cue in self._cue_positions(tokens):
            first_word = start
            while first_word < n - 1 and tokens[first_word] in LEXICON.leading_articles:
                first_word += 1
            if taken[start] or taken[first_word]:  # "liked the original jumanji": already read
                continue
            fuzzy = cue not in LEXICON.exact_title_cues
            found, ask, guess = self._title_at(tokens, start, cased, fuzzy=fuzzy)
            if found is not None:
                take(found)
            elif ask is not None and clarify is None:
                clarify = ask
                choices = () if guess is None else (guess,)
        # A message that is nothing but a title ("frozen", "the matrix") names it.
        whole = [t for t in tokens if t not in BOUNDARY_PUNCTUATION]
        indefinite = bool(whole) and whole[0] in ("a", "an")  # "a scary movie": a kind of film
        while whole and whole[0] in LEXICON.leading_articles:
            whole = whole[1:]
        words_taken = any(taken[k] for k, t in enumerate(tokens) if t not in BOUNDARY_PUNCTUATION)
        if whole and not words_taken and len(whole) <= MAX_TITLE_WORDS:
            key = title_key(whole)
            item = self._titles.item(key)
            if (
                item is not None
                and not key.replace(" ", "").isdigit()  # "3" points into a list
                and not (len(whole) == 1 and key in _EVERYDAY)
                and singular(key) not in self._attribute_keys
                and singular(key) not in self._synonyms
                and not self._is_missing_sequel(key, tokens, len(tokens))
                and not (indefinite and not _opens_with_indefinite(self.catalog.items[item].title))
                # "merry christmas": two lower-case words are a greeting, not a little-known film.
                and not (len(whole) == 2 and not any(cased) and not self._titles.well_known(item))
            ):
                take(_Span(0, len(tokens), "item", item, 1.0))
        # Uncued exact titles of two or more content words.
        for length in range(self._titles.max_words, 1, -1):
            for i in range(0, n - length + 1):
                if any(taken[i : i + length]):
                    continue
                window = tokens[i : i + length]
                key = title_key(window)
                item = self._titles.item(key)
                if item is not None and sum(w not in STOPWORDS for w in window) >= 2:
                    if self._attribute_reading_wins(normalize_key(key)):
                        continue
                    # Two words in lower case naming a little-known film are words ("real life",
                    # "true story", "way back"), unless "the", a number or a year marks them as a
                    # title ("the imitation game", "table 19", "home alone 1990"); "toy story" and
                    # "daft punk" are known well enough to be meant.
                    if (
                        length == 2
                        and not any(cased[i : i + length])
                        and not self._titles.well_known(item)
                        and not (i > 0 and tokens[i - 1] == "the")
                        and not any(w[0].isdigit() for w in window)
                        and not (i + length < n and tokens[i + length].isdigit())
                    ):
                        continue
                    take(_Span(i, i + length, "item", item, 1.0))
        # Attributes: longest exact key first, then synonyms, then fuzzy single words.
        for length in range(MAX_ATTRIBUTE_WORDS, 0, -1):
            for i in range(0, n - length + 1):
                if any(taken[i : i + length]):
                    continue
                key = " ".join(stems[i : i + length])
                values: tuple[int, ...] = ()
                if key in self._attribute_keys and not (length == 1 and key in STOPWORDS):
                    values = (self._attribute_keys[key],)
                elif key in self._synonyms:
                    values = self._synonyms[key]
                for value in values:
                    spans.append(_Span(i, i + length, "attribute", value, 1.0))
                if values:
                    for k in range(i, i + length):
                        taken[k] = True
        # A title several well-known films share, without a year: which one is asked, not guessed.
        doubtful = [
            k
            for k, span in enumerate(spans)
            if span.kind == "item"
            and span.value not in shown
            and k not in dated
            and self._titles.close_namesakes(span.value)
        ]
        choices_liked = True
        if doubtful and clarify is None:
            first = spans[doubtful[0]]
            choices = self._titles.close_namesakes(first.value)
            choices_liked = not negated_at(tokens, first.start)
            titles = [self.catalog.items[i].title for i in choices]
            clarify = f"Did you mean {', '.join(titles[:-1])} or {titles[-1]}?"
        spans = [span for k, span in enumerate(spans) if k not in doubtful]
        budget = MAX_FUZZY_TOKENS
        for i, token in enumerate(tokens):
            if budget <= 0:
                break
            if (
                taken[i]
                or len(token) < 5
                or not token.isalpha()
                or token in STOPWORDS
                or token in LEXICON.function_words
            ):
                continue
            budget -= 1
            stem = stems[i]
            match = closest(stem, self._fuzzy_attributes.get(stem[:2], ()), FUZZY_TOKEN)
            if match is not None:
                name, similarity = match
                take(_Span(i, i + 1, "attribute", self._attribute_keys[name], similarity))
        spans.sort(key=lambda s: (s.start, s.kind))
        return spans, clarify, choices, choices_liked

    def _namesake_by_words(self, tokens: list[str], span: _Span) -> int | None:
        """Which film of a shared title the words around it choose: "the new Beauty and the Beast"
        the latest, "the original" the first, and "The Heat" typed with its article the one whose
        title has it ("Heat, The (2013)", not "Heat (1995)") when only one does."""
        group = self._titles.namesakes[span.value]
        before = [t for t in tokens[max(0, span.start - 3) : span.start] if t not in ("the", "of", "a")]
        dated = sorted((i for i in group if i in self._titles.years), key=lambda i: self._titles.years[i])
        if before and before[-1] in LEXICON.newest_film_words and dated:
            return dated[-1]
        if before and before[-1] in LEXICON.oldest_film_words and dated:
            return dated[0]
        if tokens[span.start] in ("the", "a", "an"):
            article = tokens[span.start]
            with_article = [i for i in group if _opens_with_article(self.catalog.items[i].title, article)]
            if len(with_article) == 1 and len(with_article) < len(group):
                return with_article[0]
        return None

    def _one_word_title(self, word: str) -> int | None:
        """The film a capitalised word names when it stands where a title may: not an everyday
        word, an attribute's name or a synonym of one."""
        key = title_key([word])
        item = self._titles.item(key)
        if item is None or key in _EVERYDAY or key.isdigit():
            return None
        if singular(key) in self._attribute_keys or singular(key) in self._synonyms:
            return None
        return item

    def _first_film_after(self, tokens: list[str], taken: list[bool], at: int) -> _Span | None:
        """The title right after "first"/"original" at `at`, up to "movie"/"film"/"one" or the
        clause's end, as one span with the cue: the words are all the title, none left over."""
        end = at + 1
        while end < len(tokens) and end - at <= MAX_TITLE_WORDS and not is_boundary(tokens[end]):
            if tokens[end] in _FILM_WORDS or taken[end]:
                break
            end += 1
        words = tokens[at + 1 : end]
        if not words or all(w in STOPWORDS for w in words):
            return None
        key = title_key(words)
        item = self._titles.item(key)
        if item is None or self._attribute_reading_wins(normalize_key(key)):
            return None
        stop = end + 1 if end < len(tokens) and tokens[end] in _FILM_WORDS else end
        return _Span(at, stop, "item", item, 1.0)

    def _attribute_reading_wins(self, key: str) -> bool:
        """For a phrase that is both a title and an attribute: the attribute, unless it is a rare tag
        (LastFM users tag artists with their own names: "radiohead" is a tag of 20 artists)."""
        if key in self._synonyms:
            return True
        index = self._attribute_keys.get(key)
        return index is not None and self.support[index] >= 50

    def _capitalised_title_at(
        self, tokens: list[str], cased: list[int], taken: list[bool], start: int, owners: frozenset[str]
    ) -> tuple[_Span | None, str | None]:
        """The title that a run of capitalised words starting at `start` spells out, whole:
        short joining words may be in lower case inside it ("Silence of the Lambs"), a leading
        article before it belongs to it, and a number after it may belong to it ("Ocean's 11").
        Only the whole run counts: "Motherless Brooklyn" is not "Brooklyn". A one-word title must
        not be an everyday word or an attribute's name, and a title followed by a sequel number
        the catalog does not have ("Frozen 2") is no mention of the first film: the second value
        says so then."""
        if start > 0 and cased[start - 1] == 1 and tokens[start - 1] not in owners:
            # Inside a run that started earlier. A possessive ends a run ("Disney's Coco"), and a
            # sentence's capitalised first word may or may not belong to it ("Also Braveheart").
            return None, None
        before = start - 1
        while before >= 0 and (tokens[before] in LEXICON.title_joining_words or tokens[before] == ":"):
            before -= 1
        # Past joining words, still inside an earlier run: "Like a Boss" is not "The Boss", nor
        # "Birds of Prey" "Prey", nor "Alien: Covenant" "The Covenant" ("and" ends a run: "Toy
        # Story and Cars").
        if (
            0 <= before < start - 1
            and cased[before] == 1
            and tokens[before] not in owners
            and not any(tokens[k] in LEXICON.title_breaks for k in range(before + 1, start))
        ):
            return None, None
        first = start
        while start < len(tokens) and tokens[start] in LEXICON.leading_articles:
            start += 1  # "The Matrix": the article belongs to the title, the key leaves it out
        if start >= len(tokens) or not cased[start]:
            return None, None
        end = self._run_end(tokens, cased, taken, start, frozenset(), colons=True)
        # "Thor: Ragnarok" is one title and "Valentine's Day" one with a possessive in it;
        # "Mission: Impossible and The Matrix" are two titles, "Disney's Coco" one. Of a run with
        # no title, its longest beginning that is one, cut before a word that rarely goes on a
        # title, a colon or a number: "The Lion King by Disney", "Frozen 2013" (the year is read
        # after it), but not "Birds of Prey" as "The Birds".
        ends = [end] + [
            k
            for k in range(end - 1, start, -1)
            if cased[k - 1]
            and (
                tokens[k] in LEXICON.title_breaks
                or tokens[k] in _TITLE_RUN_CUTS
                or tokens[k] in (":", ",")
                or tokens[k][0].isdigit()
            )
        ]
        found = next((e for e in ends if self._titles.item(_key_without_colons(tokens[start:e]))), None)
        if found is None:
            end = self._run_end(tokens, cased, taken, start, owners, colons=False)
            while end - start > 1 and tokens[end - 1][0].isdigit():
                end -= 1  # "Frozen 2": is the sequel in the catalog? Asked below.
        else:
            end = found
        if (
            first == start
            and start > 0
            and tokens[start - 1] in LEXICON.leading_articles
            and not taken[start - 1]
        ):
            first = start - 1
        key = _key_without_colons(tokens[start:end])
        if end < len(tokens) and tokens[end].isdigit() and not taken[end]:
            numbered = self._titles.item(f"{key} {tokens[end]}")
            if numbered is not None:
                return _Span(first, end + 1, "item", numbered, 1.0), None
            if self._is_missing_sequel(key, tokens, end):
                return None, _not_in_catalog(tokens[start : end + 1])
        item = self._titles.item(key)
        if item is None or (
            end - start == 1 and first == start and start > 0 and tokens[start - 1] in _PERSON_CUES
        ):
            return None, None
        # "The Thing", with its article capitalised mid-sentence, is a title even of an everyday
        # word, and so is one capitalised right after a verb that names films ("Have you seen It",
        # "I really like It") when the writer does not capitalise every word.
        article_capitalised = first < start and cased[first]
        seen_before = (
            first > 0
            and tokens[first - 1] in LEXICON.title_verbs
            and 2 * sum(1 for flag in cased if flag) < sum(1 for t in tokens if t.isalpha())
        )
        if (
            end - start == 1
            and not article_capitalised
            and (key in _EVERYDAY or singular(key) in self._attribute_keys or singular(key) in self._synonyms)
            and not (seen_before and key in _EVERYDAY)
        ):
            return None, None
        return _Span(first, end, "item", item, 1.0), None

    @staticmethod
    def _run_end(
        tokens: list[str],
        cased: list[int],
        taken: list[bool],
        start: int,
        owners: frozenset[str],
        colons: bool,
    ) -> int:
        """Where the run of capitalised words from `start` ends: short joining words (and, with
        `colons`, a colon or a comma before a capitalised word: "Crazy, Stupid, Love") may sit
        inside it, it ends on a capitalised word, and (with `owners`) after a possessive."""
        end = start
        while end < len(tokens) and end - start < MAX_TITLE_WORDS:
            token = tokens[end]
            if taken[end] and not (colons and token in (":", ",")):  # punctuation counts as taken
                break
            joining = end > start and (
                token in LEXICON.title_joining_words
                or (colons and token in (":", ",") and end + 1 < len(tokens) and bool(cased[end + 1]))
            )
            if not (cased[end] or joining) or (end > start and tokens[end - 1] in owners):
                break
            end += 1
        while end > start and not cased[end - 1]:
            end -= 1
        return end

    def _is_missing_sequel(self, key: str, tokens: list[str], stop: int) -> bool:
        """Whether the title `key` is followed by a sequel number ("frozen 2") that, with it, is
        not a title of the catalog: then the person means a film the catalog lacks."""
        if stop >= len(tokens):
            return False
        number = digits_for_numerals([tokens[stop]])[0]
        return (
            number.isdigit()
            and 2 <= int(number) <= 9
            and self._titles.item(key) is not None
            and self._titles.item(f"{key} {number}") is None
        )

    def _cue_positions(self, tokens: list[str]) -> list[tuple[int, Phrase]]:
        """Token positions where an item title may start, after a cue phrase, with the cue."""
        positions: list[tuple[int, Phrase]] = []
        for i in range(len(tokens)):
            for cue in LEXICON.item_cues:
                if tuple(tokens[i : i + len(cue)]) == cue:
                    start = i + len(cue)
                    if start < len(tokens) and tokens[start] not in BOUNDARY_PUNCTUATION:
                        positions.append((start, cue))
                    break
        return positions

    def _title_at(
        self, tokens: list[str], start: int, cased: list[int], fuzzy: bool = True
    ) -> tuple[_Span | None, str | None, int | None]:
        """An item whose title starts at `start`: exact (longest) or, with `fuzzy`, fuzzy, or a
        question to ask with the item it guesses."""
        end = start
        while end < len(tokens) and end - start < MAX_TITLE_WORDS and tokens[end] not in BOUNDARY_PUNCTUATION:
            if end > start and (is_boundary(tokens[end]) or tokens[end] in LEXICON.title_breaks):
                break
            end += 1
        words = digits_for_numerals(tokens[start:end])
        lead = 0
        while lead < len(words) and words[lead] in LEXICON.leading_articles:
            lead += 1
        # "I feel like a scary movie": after "a"/"an" the words describe a kind of film, unless the
        # title itself opens with the article ("loved a bug's life").
        indefinite = lead > 0 and words[lead - 1] in ("a", "an")
        exact: _Span | None = None
        for stop in range(len(words), lead, -1):
            item = self._titles.item(" ".join(words[lead:stop]))
            if item is None:
                continue
            if indefinite and not _opens_with_indefinite(self.catalog.items[item].title):
                continue
            # A title of everyday words only ("get out") counts when it is all the cue is followed
            # by, up to the end of the clause: "I loved get out", not "I'd like to get out".
            if all(w in STOPWORDS for w in words[lead:stop]) and (stop - lead < 2 or stop < len(words)):
                continue
            if self._is_missing_sequel(" ".join(words[lead:stop]), words, stop):
                return None, _not_in_catalog(words[lead : stop + 1]), None
            if self._attribute_reading_wins(" ".join(singular(w) for w in words[lead:stop])):
                return None, None, None  # "like jazz": the attribute reading wins
            if stop - lead == 1 and words[stop : stop + 1] in (["movies"], ["films"]):
                return None, None, None  # "I like monster movies": a kind of film, not "Monster (2003)"
            if stop - lead == 1 and stop < len(words) and cased[start + stop]:
                continue  # "by Frank Oz": a name that goes on is no one-word title ("Frank")
            exact = _Span(start, start + stop, "item", item, 1.0)
            rest = [w for w in words[stop:] if w not in STOPWORDS]
            # A one-word title followed by more words ("toy stroy") may be a typo of a longer one.
            if stop - lead >= 2 or not rest:
                return exact, None, None
            break
        if indefinite and exact is None:
            return None, None, None  # "like a thriler": a kind of film, not a misspelt title
        if not fuzzy:
            return None, None, None  # "was super funny": a one-word title with more words after it
        # Fuzzy: try the phrase and its prefixes, minus trailing filler words.
        content_words = [w for w in words[lead:] if w]
        while content_words and content_words[-1] in STOPWORDS:
            content_words.pop()
        # "like 3 hours long" is no typo of "13 Hours".
        if not content_words or sum(len(w) for w in content_words) < 5 or content_words[0][0].isdigit():
            return None, None, None
        # "seen all of the Star Wars movies": a phrase that opens with an everyday word is talk,
        # not a misspelt title, and asking "Did you mean All of Me?" would only confuse.
        if (
            content_words[0] in STOPWORDS
            or content_words[0] in LEXICON.function_words
            or content_words[0] in LEXICON.newest_film_words
            or content_words[0] in LEXICON.oldest_film_words
        ):
            return None, None, None
        # "like action movies like ...": a phrase that opens with an attribute's name is about the
        # attribute; "Did you mean Vacation?" would only confuse.
        first_key = singular(content_words[0])
        if first_key in self._attribute_keys or first_key in self._synonyms:
            return None, None, None
        best: tuple[float, int, int] | None = None  # (similarity, item, words used)
        for stop in range(len(content_words), 0, -1):
            phrase = " ".join(content_words[:stop])
            if len(phrase) < 5:
                break
            # Below FUZZY_ASK a match is neither taken nor asked about: it is not looked for.
            match = self._titles.closest(phrase, FUZZY_ASK)
            # "Robert Downey Jr.", "Frank Oz": a name written on past the words matched is not a
            # misspelt shorter title ("Roberta", "Frank").
            capitalised_on = stop < len(content_words) and bool(cased[start + lead + stop])
            # "like the princesses": a plural of a one-word title is the kind, not the film.
            plural = (
                stop == 1
                and phrase.endswith("s")
                and any(self._titles.item(phrase[:-cut]) is not None for cut in (1, 2))
            )
            if (
                match is not None
                and not capitalised_on
                and not plural
                and (best is None or match.similarity > best[0])
            ):
                best = (match.similarity, match.item, stop)
            if best is not None and best[0] >= FUZZY_ACCEPT:
                break
        if exact is not None and (best is None or best[0] < FUZZY_ACCEPT or best[2] <= 1):
            return exact, None, None
        if best is None:
            return None, None, None
        similarity, item, used = best
        if similarity >= FUZZY_ACCEPT:
            return _Span(start, start + lead + used, "item", item, similarity), None, None
        return None, f"Did you mean {self.catalog.items[item].title}?", item

    def _reaction(
        self,
        words: list[str],
        spans: list[_Span],
        polarity: list[bool],
        shown: tuple[int, ...],
    ) -> tuple[list[DialogueAct], str | None]:
        """Acts about the items on screen: pick, reject one, more like one, none of them."""
        positions = self._pointed(words, len(shown))
        for span, positive in zip(spans, polarity, strict=True):
            if span.kind == "item" and span.value in shown:
                positions.append((shown.index(span.value) + 1, positive))
        seen = any(w in LEXICON.seen_words for w in words) or has_phrase(words, LEXICON.already_have_phrases)
        negative = any(w in LEXICON.negation_words for w in words) or has_phrase(words, LEXICON.no_phrases)
        more_like = has_phrase(words, LEXICON.more_like_phrases)
        yes = words[0] in LEXICON.yes_words or has_phrase(words, LEXICON.yes_phrases)
        acts: list[DialogueAct] = []
        if positions:
            for position, positive in dict.fromkeys(positions):
                item = shown[position - 1]
                if more_like and positive:
                    acts.append(MoreLike(item))
                elif seen:
                    acts.append(RejectItem(item, seen=True))
                elif not positive:
                    acts.append(RejectItem(item))
                else:
                    acts.append(AcceptReply(item))
            return acts, None
        if has_phrase(words, LEXICON.seen_all_phrases):
            return [RejectReply()], None
        if seen and len(shown) == 1:
            return [RejectItem(shown[0], seen=True)], None
        if seen and len(words) <= 5:
            return [RejectReply()], None
        if len(words) <= 6 and has_phrase(words, LEXICON.none_phrases):
            return [RejectReply()], None
        if len(words) <= 4 and negative:
            return [RejectReply()], None
        if len(shown) == 1 and len(words) <= 4 and yes:
            return [AcceptReply(shown[0])], None
        if len(words) <= 4 and yes:
            return [], "Great! Which one: say its number."
        return [], None

    def _pointed(self, words: list[str], n_shown: int) -> list[tuple[int, bool]]:
        """(1-based position, positive) for every list position the message points at."""
        found: list[tuple[int, bool]] = []
        for i, word in enumerate(words):
            before = words[i - 1] if i else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            pair = (word, after)
            position: int | None = None
            if word in LEXICON.ordinals:
                position = None if pair in LEXICON.not_pointers else LEXICON.ordinals[word]
            elif word.startswith("#") and word[1:].isdigit():
                position = int(word[1:])
            elif word.isdigit() and len(word) <= 2:
                if (
                    len(words) <= 2
                    or before in LEXICON.position_before_digit
                    or after in LEXICON.position_after_digit
                ):
                    position = int(word)
            elif word in LEXICON.number_words:
                if before in LEXICON.position_before_number_word or len(words) == 1:
                    position = LEXICON.number_words[word]
            elif word == "last":
                if after in LEXICON.position_after_last or len(words) <= 3:
                    position = n_shown
            elif pair in LEXICON.first_item_pointers:
                position = 1
            elif pair in LEXICON.last_item_pointers:
                position = n_shown
            if position is None or not 1 <= position <= n_shown:
                continue
            found.append((position, not negated_at(words, i)))
        return found

    def _embedded(
        self, tokens: list[str], spans: list[_Span], known: set[int]
    ) -> list[tuple[int, float, bool]]:
        assert self.nearest_attributes is not None
        covered: set[int] = set()
        for span in spans:
            covered.update(range(span.start, span.end))
        found: list[tuple[int, float, bool]] = []
        asked = 0
        for i, token in enumerate(tokens):
            if (
                i in covered
                or len(token) < 3
                or not token.isalpha()
                or token in STOPWORDS
                or token in LEXICON.function_words
            ):
                continue
            asked += 1
            if asked > 20:
                break
            try:
                nearest = self.nearest_attributes(token, 1)
            except Exception:  # an optional helper must never break understanding
                return found
            for index, similarity in nearest[:1]:
                if (
                    similarity >= self.embedding_threshold
                    and index not in known
                    and 0 <= index < self.catalog.n_attributes
                ):
                    found.append((int(index), float(similarity), not negated_at(tokens, i)))
                    known.add(index)
        return found


__all__ = [
    "FUZZY_ACCEPT",
    "FUZZY_ASK",
    "FUZZY_TOKEN",
    "MAX_ATTRIBUTE_WORDS",
    "MAX_CHARS",
    "MAX_FUZZY_TOKENS",
    "MAX_TITLE_WORDS",
    "STOPWORDS",
    "SYNONYMS",
    "NearestAttributes",
    "Understander",
    "Understanding",
    "normalize_key",
    "singular",
]
