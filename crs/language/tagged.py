"""How well the understanding finds the movies and genres people name, scored against human tags
(INSPIRED's seeker utterances, `crs.data.inspired`), and the movies seekers name in ReDial
(`score_redial_mentions`, where the mentions are marked in the data itself).

- A tagged movie counts only when the catalog has it: its title key (`title_keys`) and year must
  match a catalog item (a year one off is accepted: release years differ between sources). Tags
  the catalog lacks are counted apart, as `movies_outside_catalog`.
- A tagged genre counts when a catalog attribute of group "genre" has the same name key ("sci-fi"
  = "Sci-Fi"); others ("history", "news") are counted apart.
- Found movies are the `MentionItem` acts. A tagged movie that is not found but is among the
  films a "Did you mean ...?" offers (`Understanding.choices`) counts as a miss in recall and
  precision, and is counted apart as `asked_back`: the chat asks, and one click settles it.
- Found genres are the genre attributes of `InformReply`
  of `InformReply` acts, wanted or unwanted (a genre named to be avoided is still a genre named).
- Scored, as the benchmark defines it, on utterances with at least one tag. The tags have errors
  of their own ("Silence of the Lambs" tagged as "Silence (2016)", titles left untagged), so
  precision here is a floor: `errors` lists every miss and false find for reading.
- `score_named_movies` scores movies against a second, careful reading of every seeker utterance
  instead (`crs.data.inspired.load_named_movies`), tagged or not: its catalog films are the gold;
  a found film that belongs to a series named as a whole ("all the Star Wars movies") or to a
  reading marked unsure ("Star Wars is OK") counts neither way. `score_named_genres` does the
  same for genres (wanted or unwanted alike, as above).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crs.data.inspired import NamedGenres, NamedMovies, SeekerUtterance, TaggedTitle
from crs.data.redial import MENTION, Dialogue, movie_name, part_of
from crs.language.acts import InformReply, MentionItem
from crs.language.evaluation import Score
from crs.language.text import normalize_key
from crs.language.titles import title_keys, title_year
from crs.language.understanding import Understander
from crs.types import Catalog

if TYPE_CHECKING:
    from crs.language.people import PeopleIndex


class TitleLinker:
    """Tagged "Title (Year)" -> catalog item, by title key and year."""

    def __init__(self, catalog: Catalog) -> None:
        self._by_key_year: dict[tuple[str, int | None], int] = {}
        for item in catalog.items:
            year = title_year(item.title)
            for key in title_keys(item.title):
                self._by_key_year.setdefault((key, year), item.index)

    def item(self, tagged: TaggedTitle) -> int | None:
        keys = title_keys(tagged.title)
        years: Iterable[int | None] = (
            (None,) if tagged.year is None else (tagged.year, tagged.year - 1, tagged.year + 1)
        )
        for year in years:
            for key in keys:
                found = self._by_key_year.get((key, year))
                if found is not None:
                    return found
        return None


@dataclass
class _Counts:
    movie_tp: int = 0
    movie_fp: int = 0
    movie_fn: int = 0
    genre_tp: int = 0
    genre_fp: int = 0
    genre_fn: int = 0
    utterances: int = 0
    movies_asked_back: int = 0
    movies_outside_catalog: int = 0
    genres_outside_catalog: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class TaggedReport:
    utterances: int
    movies: Score
    genres: Score
    movies_outside_catalog: int
    genres_outside_catalog: int
    errors: tuple[dict[str, object], ...]
    movies_asked_back: int = 0  # missed, but offered by a "Did you mean ...?"

    @property
    def movie_recall_asking_back(self) -> float:
        """Recall when a "Did you mean ...?" that offers the right film counts as found."""
        found, missed = self.movies.true_positives, self.movies.false_negatives
        return (found + self.movies_asked_back) / (found + missed) if found + missed else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "utterances": self.utterances,
            "movies": self.movies.as_dict(),
            "movies_asked_back": self.movies_asked_back,
            "movie_recall_asking_back": round(self.movie_recall_asking_back, 4),
            "genres": self.genres.as_dict(),
            "movies_outside_catalog": self.movies_outside_catalog,
            "genres_outside_catalog": self.genres_outside_catalog,
        }


def score_tagged(
    understander: Understander, utterances: Sequence[SeekerUtterance]
) -> dict[str, TaggedReport]:
    """Movie and genre precision/recall per part of the split ("tune", "heldout") and "all"."""
    catalog = understander.catalog
    linker = TitleLinker(catalog)
    genres = {normalize_key(a.name): a.index for a in catalog.attributes if a.group == "genre"}
    genre_indices = set(genres.values())
    counts: dict[str, _Counts] = {"tune": _Counts(), "heldout": _Counts(), "all": _Counts()}
    for utterance in utterances:
        if not utterance.movies and not utterance.genres:
            continue
        gold_movies = {linker.item(t) for t in utterance.movies}
        outside_movies = sum(1 for t in utterance.movies if linker.item(t) is None)
        gold_movies.discard(None)
        gold_genres = {genres.get(normalize_key(g)) for g in utterance.genres}
        outside_genres = sum(1 for g in utterance.genres if normalize_key(g) not in genres)
        gold_genres.discard(None)
        understanding = understander.understand(utterance.text)
        acts = understanding.acts
        found_movies = {a.item for a in acts if isinstance(a, MentionItem)}
        asked_back = (set(understanding.choices) & gold_movies) - found_movies
        found_genres = {
            attribute
            for a in acts
            if isinstance(a, InformReply)
            for attribute in (*a.attributes, *a.unwanted)
            if attribute in genre_indices
        }
        for name in (utterance.part, "all"):
            c = counts[name]
            c.utterances += 1
            c.movies_asked_back += len(asked_back)
            c.movies_outside_catalog += outside_movies
            c.genres_outside_catalog += outside_genres
            c.movie_tp += len(found_movies & gold_movies)
            c.movie_fp += len(found_movies - gold_movies)
            c.movie_fn += len(gold_movies - found_movies)
            c.genre_tp += len(found_genres & gold_genres)
            c.genre_fp += len(found_genres - gold_genres)
            c.genre_fn += len(gold_genres - found_genres)
        if found_movies != gold_movies or found_genres != gold_genres:
            title = {i: catalog.items[i].title for i in found_movies | gold_movies if i is not None}
            counts[utterance.part].errors.append(
                {
                    "text": utterance.text,
                    "missed_movies": sorted(title[i] for i in gold_movies - found_movies if i is not None),
                    "false_movies": sorted(title[i] for i in found_movies - gold_movies),
                    "missed_genres": sorted(
                        catalog.attributes[i].name for i in gold_genres - found_genres if i is not None
                    ),
                    "false_genres": sorted(catalog.attributes[i].name for i in found_genres - gold_genres),
                }
            )
    return {
        name: TaggedReport(
            utterances=c.utterances,
            movies=Score(c.movie_tp, c.movie_fp, c.movie_fn),
            genres=Score(c.genre_tp, c.genre_fp, c.genre_fn),
            movies_outside_catalog=c.movies_outside_catalog,
            genres_outside_catalog=c.genres_outside_catalog,
            errors=tuple(c.errors),
            movies_asked_back=c.movies_asked_back,
        )
        for name, c in counts.items()
    }


@dataclass(frozen=True)
class MentionReport:
    """Movies named in seekers' own ReDial messages, `@id` written as the title without its year."""

    messages: int
    mentions: Score
    polarity_right: int  # found mentions whose liked / disliked reading matches the seeker's answer
    polarity_known: int  # found mentions for which the seeker said whether they liked the movie
    mentions_outside_catalog: int
    asked_back: int = 0  # missed, but offered by a "Did you mean ...?"

    @property
    def recall_asking_back(self) -> float:
        found, missed = self.mentions.true_positives, self.mentions.false_negatives
        return (found + self.asked_back) / (found + missed) if found + missed else 1.0

    @property
    def polarity_accuracy(self) -> float:
        return self.polarity_right / self.polarity_known if self.polarity_known else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "mentions": self.mentions.as_dict(),
            "liked_read_right": round(self.polarity_accuracy, 4),
            "liked_known": self.polarity_known,
            "mentions_outside_catalog": self.mentions_outside_catalog,
            "asked_back": self.asked_back,
            "recall_asking_back": round(self.recall_asking_back, 4),
        }


def as_typed(text: str, mentions: Mapping[str, str]) -> str:
    """A ReDial message with every `@id` written as its title without the year, as people type it."""
    return MENTION.sub(lambda m: movie_name(mentions.get(m.group(1), m.group(0)))[0], text)


@dataclass
class _MentionCounts:
    messages: int = 0
    found: int = 0
    false: int = 0
    missed: int = 0
    polarity_right: int = 0
    polarity_known: int = 0
    outside: int = 0
    asked_back: int = 0


def score_redial_mentions(
    understander: Understander, dialogues: Sequence[Dialogue]
) -> dict[str, MentionReport]:
    """Mention recall and precision, and liked/disliked read right, per part ("tune",
    "heldout") and "all", over seeker messages that mention at least one catalog movie."""
    linker = TitleLinker(understander.catalog)
    counts = {name: _MentionCounts() for name in ("tune", "heldout", "all")}
    for dialogue in dialogues:
        part = part_of(dialogue.conversation_id)
        for message in dialogue.messages:
            ids = list(dict.fromkeys(MENTION.findall(message.text)))
            if not message.seeker or not ids:
                continue
            gold: dict[int, bool | None] = {}
            outside = 0
            for movie_id in ids:
                title, year = movie_name(dialogue.mentions.get(movie_id, ""))
                item = linker.item(TaggedTitle(title, year)) if title else None
                if item is None:
                    outside += 1
                    continue
                opinion = dialogue.seeker_opinions.get(movie_id)
                gold[item] = opinion.liked if opinion else None
            found: dict[int, bool] = {}
            offered: set[int] = set()
            if gold:
                understanding = understander.understand(as_typed(message.text, dialogue.mentions))
                found = {a.item: a.liked for a in understanding.acts if isinstance(a, MentionItem)}
                offered = set(understanding.choices) - found.keys()
            known = [item for item, liked in gold.items() if item in found and liked is not None]
            for name in (part, "all"):
                c = counts[name]
                c.outside += outside
                if not gold:
                    continue
                c.messages += 1
                c.found += len(found.keys() & gold.keys())
                c.false += len(found.keys() - gold.keys())
                c.missed += len(gold.keys() - found.keys())
                c.asked_back += len(offered & gold.keys())
                c.polarity_known += len(known)
                c.polarity_right += sum(1 for item in known if found[item] == gold[item])
    return {
        name: MentionReport(
            messages=c.messages,
            mentions=Score(c.found, c.false, c.missed),
            polarity_right=c.polarity_right,
            polarity_known=c.polarity_known,
            mentions_outside_catalog=c.outside,
            asked_back=c.asked_back,
        )
        for name, c in counts.items()
    }


@dataclass(frozen=True)
class RereadReport:
    """Movies (or genres) found in every seeker utterance, against the careful re-reading."""

    utterances: int
    score: Score
    asked_back: int  # missed, but offered by a "Did you mean ...?"
    outside_catalog: int  # films named that the catalog lacks (not scored)
    neutral: int  # found films of a whole series or of an unsure reading (not scored)
    errors: tuple[dict[str, object], ...]

    @property
    def recall_asking_back(self) -> float:
        found, missed = self.score.true_positives, self.score.false_negatives
        return (found + self.asked_back) / (found + missed) if found + missed else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "utterances": self.utterances,
            "score": self.score.as_dict(),
            "asked_back": self.asked_back,
            "recall_asking_back": round(self.recall_asking_back, 4),
            "outside_catalog": self.outside_catalog,
            "neutral": self.neutral,
        }


@dataclass(frozen=True)
class _Reread:
    """One utterance scored against its re-reading: what it names, what counts neither way, what
    the reader found and offered back, and how many named films the catalog lacks."""

    gold: set[int]
    neutral: set[int]
    found: set[int]
    offered: frozenset[int] = frozenset()
    outside: int = 0


def _check_rereading(utterances: Sequence[SeekerUtterance], named: Mapping[tuple[str, int], object]) -> None:
    keys = {(u.dialog_id, u.utterance_id) for u in utterances}
    stale = [key for key in named if key not in keys]
    if stale:
        raise ValueError(f"the re-annotation names {len(stale)} utterances not in the data, e.g. {stale[0]}")


def _score_rereading(
    utterances: Sequence[SeekerUtterance],
    read: Callable[[SeekerUtterance], _Reread],
    name: Callable[[int], str],
    what: str,
) -> dict[str, RereadReport]:
    """Recall and precision of `read` over every utterance, per part and "all"; the errors name
    the `what` ("movies", "genres") missed and falsely found."""
    counts = {part: _MentionCounts() for part in ("tune", "heldout", "all")}
    errors: dict[str, list[dict[str, object]]] = {part: [] for part in counts}
    neutral_found = {part: 0 for part in counts}
    for utterance in utterances:
        reread = read(utterance)
        scored = reread.found - reread.neutral
        for part in (utterance.part, "all"):
            c = counts[part]
            c.messages += 1
            c.outside += reread.outside
            c.found += len(scored & reread.gold)
            c.false += len(scored - reread.gold)
            c.missed += len(reread.gold - scored)
            c.asked_back += len(reread.offered & reread.gold)
            neutral_found[part] += len(reread.found & reread.neutral)
        if scored != reread.gold:
            errors[utterance.part].append(
                {
                    "text": utterance.text,
                    f"missed_{what}": sorted(name(i) for i in reread.gold - scored),
                    f"false_{what}": sorted(name(i) for i in scored - reread.gold),
                }
            )
    return {
        part: RereadReport(
            utterances=c.messages,
            score=Score(c.found, c.false, c.missed),
            asked_back=c.asked_back,
            outside_catalog=c.outside,
            neutral=neutral_found[part],
            errors=tuple(errors[part]),
        )
        for part, c in counts.items()
    }


def score_named_movies(
    understander: Understander,
    utterances: Sequence[SeekerUtterance],
    named: Mapping[tuple[str, int], NamedMovies],
) -> dict[str, RereadReport]:
    """Movie recall and precision over every seeker utterance, per part and "all". Raises
    ValueError when the annotation names a title the catalog does not have verbatim or an
    utterance that is not in `utterances` (a stale annotation must not be scored)."""
    catalog = understander.catalog
    by_title = {item.title: item.index for item in catalog.items}
    _check_rereading(utterances, named)

    def items(titles: tuple[str, ...]) -> set[int]:
        missing = [t for t in titles if t not in by_title]
        if missing:
            raise ValueError(f"the re-annotation names titles the catalog lacks: {missing[:3]}")
        return {by_title[t] for t in titles}

    def read(utterance: SeekerUtterance) -> _Reread:
        entry = named.get((utterance.dialog_id, utterance.utterance_id), NamedMovies())
        neutral = items(entry.series_titles) | items(entry.unsure)
        understanding = understander.understand(utterance.text)
        found = {a.item for a in understanding.acts if isinstance(a, MentionItem)}
        return _Reread(
            gold=items(entry.movies) - neutral,
            neutral=neutral,
            found=found,
            offered=frozenset(understanding.choices) - found,
            outside=len(entry.outside),
        )

    return _score_rereading(utterances, read, lambda i: catalog.items[i].title, "movies")


def score_named_genres(
    understander: Understander,
    utterances: Sequence[SeekerUtterance],
    named: Mapping[tuple[str, int], NamedGenres],
) -> dict[str, RereadReport]:
    """Genre recall and precision over every seeker utterance against the re-reading, per part
    and "all" (`outside_catalog` stays 0: the re-reading uses the catalog's genre names). Raises
    ValueError on a genre the catalog does not have or an utterance not in `utterances`."""
    catalog = understander.catalog
    genres = {a.name: a.index for a in catalog.attributes if a.group == "genre"}
    genre_indices = set(genres.values())
    _check_rereading(utterances, named)

    def indices(names: tuple[str, ...]) -> set[int]:
        missing = [g for g in names if g not in genres]
        if missing:
            raise ValueError(f"the re-annotation names genres the catalog lacks: {missing[:3]}")
        return {genres[g] for g in names}

    def read(utterance: SeekerUtterance) -> _Reread:
        entry = named.get((utterance.dialog_id, utterance.utterance_id), NamedGenres())
        neutral = indices(entry.unsure)
        found = {
            attribute
            for act in understander.understand(utterance.text).acts
            if isinstance(act, InformReply)
            for attribute in (*act.attributes, *act.unwanted)
            if attribute in genre_indices
        }
        return _Reread(
            gold=(indices(entry.genres) | indices(entry.unwanted)) - neutral, neutral=neutral, found=found
        )

    return _score_rereading(utterances, read, lambda i: catalog.attributes[i].name, "genres")


__all__ = [
    "MentionReport",
    "RereadReport",
    "TaggedReport",
    "TitleLinker",
    "as_typed",
    "score_named_genres",
    "score_named_movies",
    "score_redial_mentions",
    "score_tagged",
]


@dataclass(frozen=True)
class PeopleReport:
    """Actors and directors named in INSPIRED seeker utterances that carry any tag."""

    utterances: int
    people: Score
    outside_catalog: int  # tagged people with no linked film in the catalog

    def as_dict(self) -> dict[str, object]:
        return {
            "utterances": self.utterances,
            "people": self.people.as_dict(),
            "outside_catalog": self.outside_catalog,
        }


def score_people(people: PeopleIndex, utterances: Sequence[SeekerUtterance]) -> dict[str, PeopleReport]:
    """People recall and precision per part ("tune", "heldout") and "all". Scored on every
    utterance with a movie, genre or people tag, so that names read where none was tagged count as
    false finds; a tagged person counts only when the catalog has a film of theirs."""
    from crs.language.people import person_key

    counts = {name: [0, 0, 0, 0, 0] for name in ("tune", "heldout", "all")}  # utt, tp, fp, fn, outside
    for utterance in utterances:
        if not (utterance.movies or utterance.genres or utterance.people):
            continue
        tagged = {person_key(name) for name in utterance.people}
        gold = {key for key in tagged if key in people.people}
        found = {person_key(person.name) for person, _ in people.find(utterance.text)}
        for name in (utterance.part, "all"):
            c = counts[name]
            c[0] += 1
            c[1] += len(found & gold)
            c[2] += len(found - gold)
            c[3] += len(gold - found)
            c[4] += len(tagged - gold)
    return {
        name: PeopleReport(utterances=c[0], people=Score(c[1], c[2], c[3]), outside_catalog=c[4])
        for name, c in counts.items()
    }
