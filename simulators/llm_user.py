"""A simulated user that talks: decisions from code, words from a language model, checked by our reader.

The user has a hidden target item. It knows the target's attribute names but never its title or
id: no prompt contains them, and a reply that names the title (case-insensitive, fuzzy) is dropped
("How Reliable is Your Simulator?", 2024: title leakage inflates success rates). The one exception
is choosing the target from a list the chat shows, in the manner of real seekers ("Oh, The
Godfather! I'll watch that"): the title is then on the screen, and naming it reveals nothing.

Two modes:

- **phrase** (default; for small local models such as gemma-3-270m, which cannot decide a
  preference but phrase a given decision well): the decision comes from code, exactly as the
  rule-based simulator makes it (the target's attributes, the persona, optional answer noise and
  "don't know"); the model only writes the words, from a fixed few-shot prompt at temperature 0.
  Our own understanding (`crs.language.Understander`, with the system's action as context) then
  reads the words back; when they lose the decision the reply is regenerated once (another seed,
  a higher temperature), then replaced by a plain template. `Utterance.source` says which
  happened ("llm" = first draft kept, "regenerated", "template").
  With `phrasing = "seekers"` the words follow real people instead of the fixed prompt
  (`simulators.seeker_phrases`): the model writes after three real ReDial seekers' messages of
  the same kind, nearest in meaning to the decision and drawn at random, at a seeded
  `phrasing_temperature`; when our reader does not get the decision back, a real message that
  carries it is said as it stands (source "seeker"). Openings are greeted as most seekers greet
  and sometimes name a film the person liked (from the target pair's real user's history, never
  the target), a choice from a list names the shown film or points at it as people do ("the
  second one!") with a real seeker's approval, and every whole reply is read back again.
- **decide** (for a capable model behind an OpenAI-compatible endpoint, iEvaLM-style): the model
  gets the persona and the target's attribute names (still never the title; shown lists describe
  items by their attributes, not their titles) and decides itself. Its reply is read with the
  understander; the code's decision is kept next to it as the ground truth to audit against.

Every request carries a seed drawn from the conversation's generator, so a rerun is word for word
the same with a backend that honours seeds (and the on-disk cache makes it cheap).

`behaviour="protocol"` makes the decisions those of the standard protocol (one opening attribute,
never quits, never volunteers, "don't know" and noise only from the options), drawing from the
generator as `RuleBasedUser` does; `behaviour="persona"` lets the persona decide those.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from crs.env import SimulatedUser
from crs.language.titles import TitleGuard
from crs.llm.base import Generation, GenerationRequest, LLMBackend, Message
from crs.settings import LLMUserSettings
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
    User,
    UserReply,
    new_state,
)
from simulators.persona import PROTOCOL_PERSONA, Persona
from simulators.rule_based import SimulatorOptions
from simulators.wrappers import simulated_user

if TYPE_CHECKING:
    from crs.language.titles import Popularity
    from crs.language.understanding import Understander
    from simulators.seeker_phrases import Kind, SeekerMessage, SeekerPhrases

Mode = Literal["phrase", "decide"]
Behaviour = Literal["persona", "protocol"]
Source = Literal["llm", "regenerated", "seeker", "template"]
MODES: tuple[Mode, ...] = ("phrase", "decide")
BEHAVIOURS: tuple[Behaviour, ...] = ("persona", "protocol")
SEED_LIMIT = 2**31 - 1
MAX_REPLY_CHARS = 300  # a reply is one or two sentences; anything longer is cut
MAX_DESCRIBED_ATTRIBUTES = 20  # target attributes named in the decide-mode prompt
MAX_LIST_ATTRIBUTES = 6  # attributes per shown item in the decide-mode prompt


@dataclass(frozen=True)
class Decision:
    """What the user means; `reply` is what the dialogue state should receive."""

    reply: UserReply
    extras: tuple[int, ...] = ()  # further true wishes the words mention (answers only)
    reason: int | None = None  # an attribute of the shown list that the target lacks (rejections)
    rank: int | None = None  # 1-based position of the accepted item in the shown list

    @property
    def label(self) -> str:
        """A short name of the decision for transcripts: yes / no / dont_know / accept / ..."""
        reply = self.reply
        if isinstance(reply, AnswerReply):
            return reply.answer.value
        return {
            AcceptReply: "accept",
            RejectReply: "reject",
            InformReply: "inform",
            QuitReply: "quit",
        }[type(reply)]


@dataclass(frozen=True)
class Utterance:
    text: str
    decision: Decision  # phrase mode: what the words say; decide mode: the ground truth
    understood: UserReply | None  # our reader's reading of `text` (decide mode: the model's decision)
    source: Source
    tokens: int = 0
    llm_seconds: float = 0.0
    leaks: int = 0  # drafts dropped because they named the title
    llm_calls: int = 0

    @property
    def first_draft_ok(self) -> bool:
        return self.source == "llm"


# --- title leakage ------------------------------------------------------------------------------
# `TitleGuard` lives in crs.language.titles, so that the chat and this user read titles with one
# normalisation; it is re-exported here, where the simulators have always imported it from.


# --- reading replies back ---------------------------------------------------------------------------


def replies_match(
    catalog: Catalog, decision: UserReply, understood: UserReply | None, target_attributes: Iterable[int]
) -> bool:
    """Whether a reading of the words carries the decision.

    Answers, quits and rejections match by kind (and answer); an acceptance by its item. An
    opening matches when every decided attribute is understood (by name: LastFM has both "80s"
    and "80's", and the reader rightly takes the more used one), nothing understood as wanted is
    false of the target, and nothing of the target is understood as unwanted. A rejected list
    matches a wish given instead ("none of these, something darker": the list is turned down
    all the same) that holds of the target in the same way.
    """
    if understood is None:
        return False
    if isinstance(decision, RejectReply) and isinstance(understood, InformReply):
        decision = InformReply(attributes=())
    if isinstance(decision, InformReply):
        if not isinstance(understood, InformReply) or not (understood.attributes or not decision.attributes):
            return False
        from crs.language.understanding import normalize_key

        def keys(attributes: Iterable[int]) -> set[str]:
            return {normalize_key(catalog.attributes[a].name) for a in attributes}

        target_keys = keys(target_attributes)
        wanted = keys(understood.attributes)
        return (
            keys(decision.attributes) <= wanted
            and wanted <= target_keys
            and not keys(understood.unwanted) & target_keys
        )
    return decision == understood


# --- prompts ----------------------------------------------------------------------------------------

_HEADER = (
    "A person chats with a {domain} recommender. Each reply starts with the decision's own words "
    "(yes, no, not sure, number N, none of these, I'd like, bye), keeps the person's style, is one "
    "sentence, and never names a title.\n\n"
)
_LIST = "Bot shows: a numbered list"
_OPEN = "Bot says: What are you in the mood for?"
# (style, what the bot did, decision, reply), balanced over the kinds of decision and their
# outcomes. Every reply starts with the decision's own words: a small model copies that pattern.
_EXAMPLES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "music": (
        ("casual, short", "Bot asks: Do you like jazz?", "yes (jazz)", "Yes, I love jazz."),
        (
            "polite, medium",
            "Bot asks: Are you into metal?",
            "no (metal)",
            "No, I'm afraid metal is not for me.",
        ),
        ("casual, medium", _LIST, "take number 4", "Number 4 is the one, love it!"),
        ("terse, short", "Bot asks: How about some blues?", "not sure (blues)", "Not sure, no idea."),
        ("enthusiastic, short", _OPEN, "want (80s, synth pop)", "I'd like some moody 80s synth pop!"),
        (
            "polite, medium",
            _LIST,
            "none of them (too much: pop)",
            "None of these, thanks, too much pop for me.",
        ),
        ("terse, short", "Bot asks: Do you like soul?", "no (soul)", "No."),
        ("enthusiastic, medium", _LIST, "take number 7", "Number 7, that's exactly it!"),
        ("casual, short", _LIST, "none of them", "None of these, sorry."),
        (
            "enthusiastic, long",
            "Bot asks: Are you into indie?",
            "yes (indie); also wants: 90s",
            "Yes, indie is great, and something from the 90s would be perfect!",
        ),
        ("casual, short", "Bot asks: Do you like punk?", "quit", "Bye, I'm done."),
    ),
    "movies": (
        ("casual, short", "Bot asks: How about a comedy?", "yes (comedy)", "Yes, a comedy sounds good."),
        (
            "polite, medium",
            "Bot asks: Are you in the mood for horror?",
            "no (horror)",
            "No, horror is not for me.",
        ),
        ("casual, medium", _LIST, "take number 4", "Number 4 is the one, love it!"),
        ("terse, short", "Bot asks: Something from the 1970s?", "not sure (1970s)", "Not sure, no idea."),
        ("enthusiastic, short", _OPEN, "want (1980s, sci-fi)", "I'd like some 80s sci-fi!"),
        (
            "polite, medium",
            _LIST,
            "none of them (too much: romance)",
            "None of these, thanks, too much romance.",
        ),
        ("terse, short", "Bot asks: Would you enjoy a western?", "no (western)", "No."),
        ("enthusiastic, medium", _LIST, "take number 7", "Number 7, that's exactly it!"),
        ("casual, short", _LIST, "none of them", "None of these, sorry."),
        (
            "enthusiastic, long",
            "Bot asks: Would you enjoy a drama?",
            "yes (drama); also wants: 1990s",
            "Yes, a drama is great, and something from the 90s would be perfect!",
        ),
        ("casual, short", "Bot asks: Should it be dark?", "quit", "Bye, I'm done."),
    ),
}


def phrase_prompt_prefix(domain: str) -> str:
    """The fixed part of every phrasing prompt of a domain (a server can keep it cached)."""
    examples = _EXAMPLES["music" if domain == "music" else "movies"]
    blocks = [f"Style: {s}\n{bot}\nDecision: {d}\nPerson: {r}\n\n" for s, bot, d, r in examples]
    return _HEADER.format(domain=domain) + "".join(blocks)


SEEKER_SHOTS = 3  # real messages shown before each reply
STANDING_TRIES = 20  # real messages tried as they stand when the model's words are lost
TITLE_RATE = 0.3  # wishes that also name a film the person liked (ReDial: 22% of seekers' messages name one)
GREETING_RATE = 0.8  # openings greeted first
NAMING_RATE = 0.6  # choices said by the film's title (the rest point at the list)
_FILM_MENTIONS = (
    "I loved {title}.",
    "Something like {title} maybe?",
    "I really liked {title}",
    "kind of like {title}",
    "My favorite is {title}.",
)
_SEEKERS_HEADER = (
    "Real people chat with a {domain} recommender. Each reply says the decision in the person's "
    "own words, like the real messages before it, and never names a title.\n\n"
)
_APPROVAL = "That one sounds great, I'll check it out!"
_SEEN = re.compile(r"\b(seen|saw|watched|heard)\b", re.IGNORECASE)
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_SPEAKS_OF_A_FILM = re.compile(
    r"\b(seen|saw|watched|watch|heard|that one|this one|it|haven'?t|have not|hasn'?t)\b", re.IGNORECASE
)

_DECIDE_SYSTEM = (
    "You role-play a person using a {domain} recommender chat. You want one particular {thing}; "
    "you cannot name it, you only know it is: {description}. Your style: {tone}, {verbosity} replies. "
    "Answer the recommender's yes/no questions truthfully from that description (yes, no, or that you "
    "don't know). When it shows a numbered list, say the number of the item that fits the description "
    '("number 3") or say "none of these" with a short reason. Never make up a title. '
    "Reply with one or two sentences only."
)


# --- the user ---------------------------------------------------------------------------------------


class LLMUser:
    """One simulated person with one hidden target. Holds no conversation state of its own.

    Its decisions are the protocol user's (`simulators.wrappers.simulated_user`), with a persona's
    habits folded in; the words are the model's. `opening`/`respond` give decisions only (the
    `SimulatedUser` protocol of `crs.env`), so the same user can drive the plain environment;
    `open`/`answer` give words as well.
    """

    def __init__(
        self,
        catalog: Catalog,
        target: int,
        options: SimulatorOptions | None = None,
        *,
        backend: LLMBackend | None = None,
        understander: Understander | None = None,
        persona: Persona | None = None,
        settings: LLMUserSettings | None = None,
        domain: str = "movies",
        temperature: float = 0.0,
        phrases: SeekerPhrases | None = None,
        liked_titles: Sequence[str] = (),
    ) -> None:
        item = catalog.items[target]
        if not item.attributes:
            raise ValueError(f"target item {item.id!r} has no attributes to talk about")
        self.catalog = catalog
        self.target = target
        self.options = options or SimulatorOptions()
        self.settings = settings or LLMUserSettings()
        # First drafts at temperature 0 are what phrase a decision reliably ([llm] temperature).
        self.temperature = temperature
        self.persona = persona or PROTOCOL_PERSONA
        self.backend = backend
        self.domain = domain
        self.guard = TitleGuard(item.title)
        self._item_id = item.id
        self._target_attributes = frozenset(item.attributes)
        self.decider = self._protocol_user(catalog, self.options)
        # The wrappers read only how many turns have passed from the state they are given.
        self._blank_state = new_state(User("simulated"))
        # Attributes whose name would give the title away (LastFM tags artists with their own
        # name) are never said; a question about one is answered without repeating it.
        self._speakable = tuple(
            a for a in item.attributes if not self.guard.leaks(catalog.attributes[a].name)
        )
        if not self._speakable:
            raise ValueError(f"target item {item.id!r} has only attributes that name its title")
        if understander is None:
            understander = shared_understander(catalog)
        self.understander = understander
        if self.settings.mode == "decide" and backend is None:
            raise ValueError("decide mode needs a language model backend")
        self.phrases = phrases
        # Films the person liked, as they would type them, for naming one as real seekers do;
        # never one that names the target.
        self.liked_titles = tuple(t for t in liked_titles if not self.guard.leaks(t))
        if self._like_seekers and phrases is None:
            raise ValueError(
                'phrasing "seekers" needs real seekers\' phrases: '
                "simulators.seeker_phrases.open_seeker_phrases"
            )

    @property
    def _like_seekers(self) -> bool:
        return (
            self.backend is not None
            and self.settings.mode == "phrase"
            and self.settings.phrasing == "seekers"
        )

    # --- decisions (code) -------------------------------------------------------------------------

    @property
    def _protocol(self) -> bool:
        return self.settings.behaviour == "protocol"

    def decide_opening(self, rng: np.random.Generator, exclude: Sequence[int] = ()) -> Decision:
        """1-3 true attributes of the target (one in protocol behaviour, drawn as the rule user
        draws it); `exclude` holds ones already said that the system did not understand."""
        choices = [a for a in self._speakable if a not in exclude] or list(self._speakable)
        k = 1 if self._protocol else min(self.persona.opening_attributes, len(choices))
        if k == 1:
            picked = [choices[int(rng.integers(len(choices)))]]
        else:
            picked = [choices[int(i)] for i in rng.choice(len(choices), size=k, replace=False)]
        return Decision(InformReply(attributes=tuple(picked)))

    def decide(
        self, action: SystemAction, turn: int, rng: np.random.Generator, known: Iterable[int] = ()
    ) -> Decision:
        """The reply to `action` after `turn` turns: the protocol user's decision (the rule user in
        its wrappers, drawing from `rng` as it does), plus, for a persona, an unasked wish."""
        reply = self.decider.respond(replace(self._blank_state, turn=turn), action, rng)
        if isinstance(action, Ask) and isinstance(reply, AnswerReply):
            extras: tuple[int, ...] = ()
            if not self._protocol and self.persona.volunteer_rate:
                said = {*known, action.attribute}
                unsaid = [a for a in self._speakable if a not in said]
                if rng.random() < self.persona.volunteer_rate and unsaid:
                    extras = (unsaid[int(rng.integers(len(unsaid)))],)
            return Decision(reply, extras=extras)
        if isinstance(action, Recommend) and not isinstance(reply, QuitReply):
            if isinstance(reply, AcceptReply):
                return Decision(reply, rank=action.items.index(self.target) + 1)
            return Decision(reply, reason=self._reason(action.items[: self.options.list_size]))
        return Decision(reply)

    def _protocol_user(self, catalog: Catalog, options: SimulatorOptions) -> SimulatedUser:
        """The rule user whose decisions this one makes. A persona's patience and "don't know"
        rate fold into the protocol's options (one draw each, where the rule user draws)."""
        if not self._protocol:
            patience = options.patience
            if self.persona.patience is not None:
                patience = min(patience or self.persona.patience, self.persona.patience)
            dont_know = options.dont_know
            if self.persona.dont_know_rate:
                dont_know = 1.0 - (1.0 - dont_know) * (1.0 - self.persona.dont_know_rate)
            options = replace(options, patience=patience, dont_know=dont_know)
        return simulated_user(catalog, self.target, options)

    def _reason(self, shown: Sequence[int]) -> int | None:
        """What the shown items have in common that the target lacks ("too much pop"): true, and
        only said by a persona that says more than a word."""
        if self.persona.verbosity == "short":
            return None
        counts = Counter(a for item in shown for a in self.catalog.items[item].attributes)
        for attribute, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if attribute in self._target_attributes:
                continue
            name = self.catalog.attributes[attribute].name
            if not self.guard.leaks(name) and not any(
                TitleGuard(self.catalog.items[i].title).leaks(name) for i in shown
            ):
                return attribute
        return None

    # `Participant` protocol: decisions without words.
    def opening(self, rng: np.random.Generator) -> InformReply:
        reply = self.decide_opening(rng).reply
        assert isinstance(reply, InformReply)
        return reply

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        return self.decide(action, state.turn, rng, state.accepted_attributes).reply

    # --- words ----------------------------------------------------------------------------------------

    def open(self, rng: np.random.Generator, exclude: Sequence[int] = (), system_text: str = "") -> Utterance:
        """The opening request (or a new one after the system did not understand the last)."""
        decision = self.decide_opening(rng, exclude)
        return self._speak(decision, None, system_text, _draw_seed(rng), history=())

    def answer(
        self,
        action: SystemAction,
        system_text: str,
        turn: int,
        rng: np.random.Generator,
        known: Iterable[int] = (),
        history: Sequence[tuple[str, str]] = (),
    ) -> Utterance:
        """The reply to the system's `action`, worded as `system_text`, after `turn` turns.
        `history` ((`shown_text` of a system message, user text) pairs) is read in decide mode only."""
        decision = self.decide(action, turn, rng, known)
        return self._speak(decision, action, system_text, _draw_seed(rng), history)

    def template_utterance(self, decision: Decision, context: SystemAction | None) -> Utterance:
        """The plain wording of a decision (used after the system asked back)."""
        return self._template(decision, context, leaks=0)

    def _speak(
        self,
        decision: Decision,
        context: SystemAction | None,
        system_text: str,
        seed: int,
        history: Sequence[tuple[str, str]],
    ) -> Utterance:
        if self.backend is None:
            return self._template(decision, context, leaks=0)
        if self._like_seekers:
            return self._speak_like_seekers(decision, context, system_text, seed)
        if isinstance(decision.reply, QuitReply) or self.settings.mode == "phrase":
            return self._phrase(decision, context, system_text, seed)
        return self._decide_in_words(decision, context, system_text, seed, history)

    def _phrase(
        self, decision: Decision, context: SystemAction | None, system_text: str, seed: int
    ) -> Utterance:
        prompt = phrase_prompt_prefix(self.domain) + self._situation(decision, context, system_text)
        tokens, seconds, leaks, calls = 0, 0.0, 0, 0
        # The regeneration starts the reply with the decision's own words ("Number 4", "No,") and
        # lets the model go on from there, at a higher temperature and another seed.
        lead = _lead_words(decision)
        attempts: tuple[tuple[float, int, str, Source], ...] = (
            (self.temperature, seed, "", "llm"),
            (self.settings.retry_temperature, seed + 1, lead, "regenerated"),
        )
        for temperature, attempt_seed, prefill, source in attempts:
            request = GenerationRequest(
                prompt=prompt + (f" {prefill}" if prefill else ""),
                max_tokens=self.settings.max_tokens,
                temperature=temperature,
                seed=attempt_seed % SEED_LIMIT,
                stop=("\n",),
            )
            generation = self._generate(request)
            if generation is None:
                break
            calls += 1
            tokens += generation.prompt_tokens + generation.completion_tokens
            seconds += generation.seconds
            text = _clean(prefill + generation.text if prefill else generation.text)
            if not text:
                continue
            if self.guard.leaks(text):
                leaks += 1
                continue
            understood = self._read(text, context)
            if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                return Utterance(text, decision, understood, source, tokens, seconds, leaks, calls)
        fallback = self._template(decision, context, leaks)
        return Utterance(
            fallback.text, decision, fallback.understood, "template", tokens, seconds, leaks, calls
        )

    def _speak_like_seekers(
        self, decision: Decision, context: SystemAction | None, system_text: str, seed: int
    ) -> Utterance:
        """`phrasing = "seekers"`: the words, then what people add to them. `extra` is the seed's
        own stream, so that a rerun draws the same and the conversation's stream one seed a reply."""
        extra = np.random.default_rng([seed, 1])
        if isinstance(decision.reply, AcceptReply):
            pointed = self._accept_like_seekers(decision, context, extra)
            if pointed is not None:
                return pointed
            # Real seekers never pick by number (ReDial's recommenders name films): the fixed
            # examples word it, and a real seeker's thanks or goodbye follows.
            said = self._phrase(decision, context, system_text, seed)
            return self._followed_by(said, self._real_closing(extra), context)
        said = self._phrase_like_seekers(decision, context, system_text, seed)
        if context is None:
            said = self._greeted(said, extra)
        if isinstance(decision.reply, InformReply) and self.liked_titles and extra.random() < TITLE_RATE:
            title = self.liked_titles[int(extra.integers(len(self.liked_titles)))]
            mention = _FILM_MENTIONS[int(extra.integers(len(_FILM_MENTIONS)))].format(title=title)
            said = self._followed_by(said, mention, context)
        return said

    def _phrase_like_seekers(
        self, decision: Decision, context: SystemAction | None, system_text: str, seed: int
    ) -> Utterance:
        """Words in the manner of real seekers: the model writes the decision after a few real
        messages of the same kind, near in meaning to the decision and drawn at random (the seed
        fixes which), at `phrasing_temperature`. When our reader does not get the decision back,
        a real message of that kind is said as it stands if it carries the decision where it is
        said; a wish is put after the beginning of a real opening; else the template."""
        from simulators.seeker_phrases import BARE_WORD_KINDS

        assert self.phrases is not None
        kind = _kind_of(decision, context)
        decided = self._decision_words(decision, context)  # also what to look for: "no (Horror)"
        local = np.random.default_rng(seed)
        shots = self.phrases.examples(kind, decided, local, k=SEEKER_SHOTS, verbosity=self.persona.verbosity)
        prompt = _SEEKERS_HEADER.format(domain=self.domain) + "".join(
            f"Decision: {shot.label(kind)}\nPerson: {shot.text}\n" for shot in shots
        )
        prompt += f"{self._bot_line(context, system_text)}\nDecision: {decided}\nPerson:"
        request = GenerationRequest(
            prompt=prompt,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.phrasing_temperature,
            seed=seed % SEED_LIMIT,
            stop=("\n",),
            fresh=True,
        )
        tokens, seconds, leaks, calls = 0, 0.0, 0, 0
        generation = self._generate(request)
        if generation is not None:
            calls = 1
            tokens = generation.prompt_tokens + generation.completion_tokens
            seconds = generation.seconds
            text = _clean(generation.text)
            if text and self.guard.leaks(text):
                leaks = 1
            elif text and (kind not in BARE_WORD_KINDS or len(text.split()) > 1):
                understood = self._read(text, context)
                if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                    return Utterance(text, decision, understood, "llm", tokens, seconds, leaks, calls)
        for shot in self._as_they_stand(kind, local):
            understood = self._read(shot.text, context)
            if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                return Utterance(shot.text, decision, understood, "seeker", tokens, seconds, leaks, calls)
        if isinstance(decision.reply, InformReply):
            framed = self._opening_in_real_frames(decision, local)
            if framed is not None:
                return Utterance(framed[0], decision, framed[1], "seeker", tokens, seconds, leaks, calls)
            text = f"I'm looking for {self._wish(decision.reply.attributes)}."
            understood = self._read(text, context)
            if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                return Utterance(text, decision, understood, "template", tokens, seconds, leaks, calls)
        fallback = self._template(decision, context, leaks)
        return Utterance(
            fallback.text, decision, fallback.understood, "template", tokens, seconds, leaks, calls
        )

    def _followed_by(self, said: Utterance, more: str, context: SystemAction | None) -> Utterance:
        """`said` with `more` after it, when the whole still carries the decision and names no
        title of the target; else `said` as it was."""
        return self._joined(said, f"{said.text} {more}".strip() if more else "", context)

    def _preceded_by(self, said: Utterance, before: str, context: SystemAction | None) -> Utterance:
        return self._joined(said, f"{before} {said.text}".strip() if before else "", context)

    def _joined(self, said: Utterance, text: str, context: SystemAction | None) -> Utterance:
        if not text or self.guard.leaks(text):
            return said
        understood = self._read(text, context)
        if not replies_match(self.catalog, said.decision.reply, understood, self._target_attributes):
            return said
        return replace(said, text=text, understood=understood)

    def _accept_like_seekers(
        self, decision: Decision, context: SystemAction | None, rng: np.random.Generator, tries: int = 3
    ) -> Utterance | None:
        """The choice said as people say it: by its title, now that the chat has shown it ("Oh,
        The Godfather! I'll watch that"; not a leak: it is on the screen), or by pointing at the
        list ("the second one!"); with a real seeker's word of approval."""
        from crs.language.titles import typed_title

        assert self.phrases is not None and decision.rank is not None
        rank = decision.rank
        ordinal = _ORDINALS[rank - 1] if rank <= len(_ORDINALS) else f"{rank}th"
        title = typed_title(self.catalog.items[self.target].title)
        pointing = (
            f"The {ordinal} one",
            f"the {ordinal} one",
            f"I'll take the {ordinal} one",
            f"oh the {ordinal} one",
        )
        naming = (f"Oh {title}", title, f"I'll watch {title}", f"ooh {title}", f"{title} sounds great")
        reactions = [
            m.text
            for m in (self.phrases.messages[i] for i in self.phrases.nearest("yes", _APPROVAL))
            if not _SEEN.search(m.text)
        ]
        for _ in range(tries):
            leads = naming if rng.random() < NAMING_RATE else pointing
            lead = leads[int(rng.integers(len(leads)))]
            reaction = reactions[int(rng.integers(len(reactions)))] if reactions else ""
            if reaction and rng.random() < 0.3:  # "Oh I love that one! The second one."
                text = f"{reaction} {lead}{rng.choice(['!', '.'])}"
            else:
                text = f"{lead}{rng.choice(['!', ',', '.'])} {reaction}".strip()
            understood = self._read(text, context)
            if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                return Utterance(text, decision, understood, "seeker")
        return None

    def _real_closing(self, rng: np.random.Generator) -> str:
        assert self.phrases is not None
        shots = self.phrases.examples("quit", "Thanks, that's the one!", rng, k=1)
        return shots[0].text if shots else ""

    def _wish(self, attributes: Sequence[int], plural: bool = False) -> str:
        """A wish as a film-goer says it: "a dark crime movie from the 1990s" (plural: "dark
        crime movies from the 1990s")."""
        groups: dict[str, list[str]] = {"genre": [], "decade": [], "tag": []}
        for attribute in attributes:
            name = self._name(attribute)
            if name:
                groups.get(self.catalog.attributes[attribute].group, groups["tag"]).append(name)
        thing = "band" if self.domain == "music" else "movie"
        words = " ".join([*groups["tag"], *(g.lower() for g in groups["genre"]), thing + "s" * plural])
        if not plural:
            words = f"{'an' if words[0] in 'aeiou' else 'a'} {words}"
        if groups["decade"]:
            words += f" from the {_join(groups['decade'])}"
        return words

    def _opening_in_real_frames(
        self, decision: Decision, rng: np.random.Generator, tries: int = 3
    ) -> tuple[str, UserReply] | None:
        """The wish after the beginning of a real seeker's opening ("Hi! I'm looking for" a
        dark crime movie from the 1990s), when the whole reads as the wish."""
        from simulators.seeker_phrases import PLURAL_AFTER

        assert self.phrases is not None and isinstance(decision.reply, InformReply)
        frames = self.phrases.frames
        for _ in range(min(tries, len(frames))):
            frame = frames[int(rng.integers(len(frames)))]
            plural = frame.split()[-1].lower() in PLURAL_AFTER
            text = f"{frame} {self._wish(decision.reply.attributes, plural)}."
            understood = self._read(text, None)
            if replies_match(self.catalog, decision.reply, understood, self._target_attributes):
                assert understood is not None
                return text, understood
        return None

    def _greeted(self, said: Utterance, rng: np.random.Generator) -> Utterance:
        """Most real seekers greet first (84% of ReDial's openings): a real greeting before an
        opening that has none."""
        from simulators.seeker_phrases import GREETING

        assert self.phrases is not None
        greetings = self.phrases.greetings
        if not greetings or GREETING.match(said.text) or rng.random() >= GREETING_RATE:
            return said
        greeting = greetings[int(rng.integers(len(greetings)))]
        return self._preceded_by(said, greeting, None)

    def _as_they_stand(self, kind: Kind, rng: np.random.Generator) -> list[SeekerMessage]:
        """Real messages that could be said unchanged, `STANDING_TRIES` of the decision's kind at
        random (all of them, not the nearest: people vary more than one neighbourhood of meaning).
        Answers to a question never speak of a film seen ("No, I haven't seen it" is not how
        anyone turns down a genre), nor of other wishes, which could be false of the target."""
        assert self.phrases is not None
        rows = self.phrases.of_kind(kind, self.persona.verbosity, at_least=STANDING_TRIES)
        picked = [
            self.phrases.messages[rows[int(i)]] for i in rng.permutation(len(rows))[: STANDING_TRIES * 3]
        ]
        if kind in ("yes", "no", "dont_know"):
            picked = [m for m in picked if not (_SPEAKS_OF_A_FILM.search(m.text) or m.wants or m.unwanted)]
        return [m for m in picked if not self.guard.leaks(m.text)][:STANDING_TRIES]

    def _decide_in_words(
        self,
        ground_truth: Decision,
        context: SystemAction | None,
        system_text: str,
        seed: int,
        history: Sequence[tuple[str, str]],
    ) -> Utterance:
        """Decide mode: the model decides; the code's decision is kept as the ground truth."""
        messages = [Message("system", self._decide_system_prompt())]
        for bot_text, user_text in history:
            messages += [Message("user", bot_text), Message("assistant", user_text)]
        messages.append(Message("user", self.shown_text(system_text, context)))
        tokens, seconds, leaks, calls = 0, 0.0, 0, 0
        attempts: tuple[tuple[float, int, Source], ...] = (
            (self.temperature, seed, "llm"),
            (self.settings.retry_temperature, seed + 1, "regenerated"),
        )
        for temperature, attempt_seed, source in attempts:
            request = GenerationRequest(
                messages=tuple(messages),
                max_tokens=self.settings.max_tokens,
                temperature=temperature,
                seed=attempt_seed % SEED_LIMIT,
                stop=("\n",),
            )
            generation = self._generate(request)
            if generation is None:
                break
            calls += 1
            tokens += generation.prompt_tokens + generation.completion_tokens
            seconds += generation.seconds
            text = _clean(generation.text)
            if not text:
                continue
            if self.guard.leaks(text):
                leaks += 1
                continue
            understood = self._read(text, context)
            return Utterance(text, ground_truth, understood, source, tokens, seconds, leaks, calls)
        fallback = self._template(ground_truth, context, leaks)
        return Utterance(
            fallback.text, ground_truth, fallback.understood, "template", tokens, seconds, leaks, calls
        )

    def _generate(self, request: GenerationRequest) -> Generation | None:
        """One model call, or None when the request would carry the title (it is never sent; the
        words then come from the template). A failing backend raises `LLMError`: a run whose
        model is unreachable must stop, not quietly become a run of templates."""
        assert self.backend is not None
        text = request.prompt or "\n".join(m.content for m in request.messages)
        item_id = str(self._item_id)
        if self.guard.leaks(text) or (not item_id.isdigit() and item_id.lower() in text.lower()):
            return None
        return self.backend.generate(request)

    def _read(self, text: str, context: SystemAction | None) -> UserReply | None:
        """The reply the chat would act on, read as `ChatBot.handle_text` reads it: nothing when
        the reader would ask back, restart or show help instead."""
        return read_reply(self.understander, text, context)

    # --- prompts and templates ---------------------------------------------------------------------------

    def _name(self, attribute: int) -> str | None:
        name = self.catalog.attributes[attribute].name
        return None if self.guard.leaks(name) else name

    def _situation(self, decision: Decision, context: SystemAction | None, system_text: str) -> str:
        decided = self._decision_words(decision, context)
        bot = self._bot_line(context, system_text)
        return f"Style: {self.persona.style}\n{bot}\nDecision: {decided}\nPerson:"

    def _bot_line(self, context: SystemAction | None, system_text: str) -> str:
        if isinstance(context, Recommend):
            return _LIST
        if isinstance(context, Ask):
            question = _first_line(system_text)
            return (
                f"Bot asks: {question}"
                if question and not self.guard.leaks(question)
                else "Bot asks: one thing"
            )
        return _OPEN

    def _decision_words(self, decision: Decision, context: SystemAction | None) -> str:
        reply = decision.reply
        if isinstance(reply, QuitReply):
            return "quit"
        if isinstance(reply, AcceptReply):
            return f"take number {decision.rank}"
        if isinstance(reply, RejectReply):
            reason = self._name(decision.reason) if decision.reason is not None else None
            return f"none of them (too much: {reason})" if reason else "none of them"
        if isinstance(reply, InformReply):
            names = [n for n in (self._name(a) for a in reply.attributes) if n]
            return f"want ({', '.join(names)})"
        assert isinstance(reply, AnswerReply)
        word = {Answer.YES: "yes", Answer.NO: "no", Answer.DONT_KNOW: "not sure"}[reply.answer]
        asked = self._name(context.attribute) if isinstance(context, Ask) else None
        words = f"{word} ({asked})" if asked else word
        extras = [n for n in (self._name(a) for a in decision.extras) if n]
        return words + (f"; also wants: {', '.join(extras)}" if extras else "")

    def _template(self, decision: Decision, context: SystemAction | None, leaks: int) -> Utterance:
        text = self._plain_words(decision)
        return Utterance(text, decision, self._read(text, context), "template", leaks=leaks)

    def _plain_words(self, decision: Decision) -> str:
        reply = decision.reply
        if isinstance(reply, QuitReply):
            return "Bye."
        if isinstance(reply, AcceptReply):
            return f"Number {decision.rank}, that's the one."
        if isinstance(reply, RejectReply):
            return "None of these."
        if isinstance(reply, InformReply):
            names = [n for n in (self._name(a) for a in reply.attributes) if n]
            return f"I'm looking for {_join(names)}."
        assert isinstance(reply, AnswerReply)
        return {Answer.YES: "Yes.", Answer.NO: "No.", Answer.DONT_KNOW: "I don't know."}[reply.answer]

    def _decide_system_prompt(self) -> str:
        names = [n for n in (self._name(a) for a in self._speakable[:MAX_DESCRIBED_ATTRIBUTES]) if n]
        return _DECIDE_SYSTEM.format(
            domain=self.domain,
            thing="artist" if self.domain == "music" else "film",
            description=", ".join(names),
            tone=self.persona.tone,
            verbosity=self.persona.verbosity,
        )

    def shown_text(self, system_text: str, context: SystemAction | None) -> str:
        """What the model is shown of a system message: lists as attribute descriptions (every
        title hidden, since the target's is among them), anything naming the title replaced."""
        if isinstance(context, Recommend):
            lines = ["Here are some ideas:"]
            for number, item in enumerate(context.items, start=1):
                guard = TitleGuard(self.catalog.items[item].title)
                names = [
                    self.catalog.attributes[a].name
                    for a in self.catalog.items[item].attributes
                    if not guard.leaks(self.catalog.attributes[a].name)
                    and not self.guard.leaks(self.catalog.attributes[a].name)
                ]
                lines.append(
                    f"{number}. an item that is {', '.join(names[:MAX_LIST_ATTRIBUTES]) or 'unknown'}"
                )
            lines.append('Pick a number, or say "none of these".')
            return "\n".join(lines)
        if isinstance(context, Ask) and self._name(context.attribute) is None:
            return "Do you like that? (yes / no)"
        text = system_text.split("\n\n")[0]
        return "What are you in the mood for?" if self.guard.leaks(text) else text


_UNDERSTANDERS: dict[tuple[int, bool], tuple[Catalog, Understander]] = {}


def shared_understander(catalog: Catalog, popularity: Popularity | None = None) -> Understander:
    """One reader per catalog (and with or without its popularity, which decides what a bare
    title means) in a process: building one takes about a second on LastFM."""
    from crs.language.understanding import Understander

    key = (id(catalog), popularity is not None)
    entry = _UNDERSTANDERS.get(key)
    if entry is None or entry[0] is not catalog:
        if len(_UNDERSTANDERS) >= 4:
            _UNDERSTANDERS.clear()
        entry = (catalog, Understander(catalog, popularity=popularity))
        _UNDERSTANDERS[key] = entry
    return entry[1]


def read_reply(understander: Understander, text: str, context: SystemAction | None) -> UserReply | None:
    """The one reply the chat takes from `text` (None: it would ask back, not act, or do more than
    the reply says: keep the rest of a list, start over), by the chat's own rule
    (`crs.language.reading.read_message`)."""
    from crs.language.reading import read_message

    reading = read_message(understander.understand(text, context), context)
    return None if reading.chat_only else reading.reply


def _kind_of(decision: Decision, context: SystemAction | None) -> Kind:
    """Which real messages a decision is worded after (`simulators.seeker_phrases`)."""
    reply = decision.reply
    if isinstance(reply, AnswerReply):
        return {Answer.YES: "yes", Answer.NO: "no", Answer.DONT_KNOW: "dont_know"}[reply.answer]  # type: ignore[return-value]
    if isinstance(reply, AcceptReply):
        return "accept"
    if isinstance(reply, RejectReply):
        return "reject"
    if isinstance(reply, InformReply):
        return "opening" if context is None else "inform"
    return "quit"


def _lead_words(decision: Decision) -> str:
    """How a reply carrying `decision` starts (the regeneration's forced beginning)."""
    reply = decision.reply
    if isinstance(reply, AnswerReply):
        return {Answer.YES: "Yes,", Answer.NO: "No,", Answer.DONT_KNOW: "Not sure,"}[reply.answer]
    if isinstance(reply, AcceptReply):
        return f"Number {decision.rank}"
    if isinstance(reply, RejectReply):
        return "None of these,"
    if isinstance(reply, InformReply):
        return "I'd like"
    return "Bye,"


def _draw_seed(rng: np.random.Generator) -> int:
    # Exactly one draw per utterance, whatever path the words take, so the decisions that follow
    # are the same with and without a model.
    return int(rng.integers(SEED_LIMIT))


def _clean(text: str) -> str:
    line = text.strip().split("\n")[0].strip()
    for prefix in ("Person:", "person:", "Reply:"):
        if line.startswith(prefix):
            line = line[len(prefix) :].strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    return line[:MAX_REPLY_CHARS]


def _first_line(text: str) -> str:
    return text.strip().split("\n")[0].strip()


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


__all__ = [
    "Decision",
    "LLMUser",
    "LLMUserSettings",
    "TitleGuard",
    "Utterance",
    "phrase_prompt_prefix",
    "replies_match",
]
