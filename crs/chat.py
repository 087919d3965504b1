"""One person's chat with the recommender, independent of any web framework.

`ChatBot` holds what every session shares (catalog, policy, language understanding, the attribute
graph); `ChatSession` is one person's conversation: an immutable value that every handler takes in
and gives back, so the web app keeps it in per-browser state and two people never share anything.

A message goes: text -> dialogue acts (`crs.language`) -> what the message amounts to
(`crs.language.reading`) -> one step of the conversation environment (`crs.env.transition`, the
person being the user) -> the policy's next action -> words. Buttons skip the first steps: they
produce the reply directly.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from crs.env import Policy, transition
from crs.index import FloatArray
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    DialogueState,
    GiveUp,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
    User,
    UserReply,
    new_state,
)

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.data.film_details import CatalogDetails
    from crs.evaluation.records import ConversationRecord
    from crs.language.people import PeopleIndex, Person
    from crs.language.understanding import Understander
    from crs.progress import Progress
    from crs.questions import QuestionRules
    from crs.retrieval import Retriever
    from crs.scoring.context_ranker import ContextRanker
    from crs.settings import Settings
    from knowledge_graph import AttributeGraph

Role = Literal["user", "assistant"]
# A person may take longer than the simulated protocol's 15 turns; the policy still plans with it.
CHAT_MAX_TURNS = 40
WEB_USER = "web"
MAX_WISHES = 3  # the retriever reads the person's last few wishes, not the whole chat
MAX_WISH_CHARACTERS = 500


LIKENESS_TO_SAY = 0.4  # similarity (0-1, see crs.scoring.similarity) from which "much like X" is said
# Log-likelihood added to (taken from) every film of a person the person asked for (against): about
# as strong as naming a film to be like (the belief policy's similar_weight), evidence, not a filter.
PERSON_WEIGHT = 6.0
LIKELY_SHARE = 0.9  # the side panel's "likely films" hold this share of the policy's belief
RANKED_CONVERSATIONS = (
    32  # conversations whose context-ranker features are kept (one turn asks several times)
)


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    text: str
    why: str | None = None  # an explanation shown folded under the message
    items: tuple[int, ...] = ()  # the list this message recommends, if it does


@dataclass(frozen=True)
class Feedback:
    """A thumbs up (`liked` True) or down (False) on one of the bot's messages (an index into
    `ChatSession.messages`); None when the person took it back."""

    message: int
    liked: bool | None
    items: tuple[int, ...] = ()


@dataclass(frozen=True)
class ChatSession:
    """Everything about one conversation; replaced, never modified."""

    state: DialogueState
    pending: SystemAction | None = None  # the system's last action, awaiting the user's reply
    messages: tuple[ChatMessage, ...] = ()
    seed: int = 0
    policy: str = ""  # name of the policy this conversation uses ("" = the bot's default)
    wishes: tuple[str, ...] = ()  # the person's own words about what they want (for the retriever)
    accepted_item: int | None = None
    # The films a "Did you mean ...?" offers as buttons, until the next message, and whether the
    # person named them as liked.
    offered: tuple[int, ...] = ()
    offered_liked: bool = True
    # Actors and directors asked for and against ("with Jim Carrey", "no Tarantino"), by name.
    with_people: tuple[str, ...] = ()
    without_people: tuple[str, ...] = ()
    transcript: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    # The browser tab's id in chat logs (`crs.chat_log`); "" where nothing is logged.
    log_id: str = ""
    feedback: tuple[Feedback, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state.finished

    def say(self, role: Role, text: str, why: str | None = None, items: tuple[int, ...] = ()) -> ChatSession:
        return replace(self, messages=self.messages + (ChatMessage(role, text, why, items),))


def domain_of(dataset: Dataset) -> str:
    """What the chat talks about: LastFM's tags are music ("Do you like jazz?"); everything else
    is worded as films."""
    return "music" if dataset.name.startswith("lastfm") else "movies"


class ChatBot:
    """Shared, read-only machinery of the chat; all per-person state is in `ChatSession`."""

    def __init__(
        self,
        dataset: Dataset,
        policy: Policy,
        understander: Understander,
        graph: AttributeGraph | None = None,
        max_turns: int = CHAT_MAX_TURNS,
        policy_factory: Callable[[str], Policy] | None = None,
        retriever: Retriever | None = None,
        questions: QuestionRules | None = None,
        details: CatalogDetails | None = None,
        context_ranker: ContextRanker | None = None,
    ) -> None:
        self.dataset = dataset
        # A catalog of real dialogues (ReDial) ranks films from everything the person typed with
        # the model its benchmark measures (`crs.scoring.context_ranker`) instead of the retriever
        # alone; None elsewhere.
        self.context_ranker = context_ranker
        self._conversation_features = functools.lru_cache(maxsize=RANKED_CONVERSATIONS)(
            self._read_conversation
        )
        # Directors, cast and plot of the films (cards, "with Jim Carrey"); None: titles only.
        self.details = details
        self.people: PeopleIndex | None = None
        if details is not None:
            from crs.language.people import PeopleIndex

            self.people = PeopleIndex.for_catalog(details, dataset.catalog)
        # The question bank's wording (templates, display names, multiple-choice groups); None:
        # the built-in templates of crs.language.generation.
        self.questions = questions
        self.catalog = dataset.catalog
        self.policy = policy
        self.retriever = retriever
        self.default_policy = str(getattr(policy, "name", "default"))
        # Other policies are built on first use (a learned one trains once) and then shared.
        self._policies: dict[str, Policy] = {self.default_policy: policy}
        self._policy_factory = policy_factory
        self._policies_lock = threading.Lock()
        self.understander = understander
        self.graph = graph
        self.max_turns = max_turns
        self._frequency = dataset.catalog.index.item_frequency()
        self.domain = domain_of(dataset)

    # --- starting ---------------------------------------------------------------------------

    def policy_for(self, session: ChatSession) -> Policy:
        name = session.policy or self.default_policy
        with self._policies_lock:
            if name not in self._policies:
                if self._policy_factory is None:
                    raise ValueError(f"policy {name!r} is not available in this chat")
                self._policies[name] = self._policy_factory(name)
            return self._policies[name]

    def start(
        self, seed: int = 0, policy: str = "", user: User | None = None, log_id: str = ""
    ) -> ChatSession:
        """A new conversation. `user` is who is talking (their history and friends inform the
        policy's prior): the evaluation passes the target pair's user; a visitor is anonymous.
        `log_id`: the browser tab's id in chat logs (its conversations are told apart by seed)."""
        state = new_state(user or User(WEB_USER), self.max_turns)
        session = ChatSession(state=state, seed=seed, policy=policy or self.default_policy, log_id=log_id)
        return session.say("assistant", self.greeting())

    def greeting(self) -> str:
        examples = [a.name for a in self.catalog.attributes[:3]]
        return (
            "Hi! Tell me what you are in the mood for, in your own words "
            f'(for example: "something {examples[0].lower()}", "like {self.catalog.items[0].title}", '
            '"no horror"), and I will find it in a few questions. Type "help" at any time.'
        )

    # --- handling the user ------------------------------------------------------------------

    def handle_text(self, session: ChatSession, text: str) -> ChatSession:
        from crs.language.reading import read_message

        shown = text if len(text) <= 2000 else text[:2000] + " …"
        session = replace(session, offered=()).say("user", shown)
        understanding = self.understander.understand(text, session.pending)
        reading = read_message(understanding, session.pending)
        if reading.kind == "restart":
            return self.start(session.seed + 1, session.policy, session.state.user, session.log_id)
        if reading.kind == "help":
            return session.say("assistant", self.help_text(session))
        named = self.people.find(text) if self.people is not None else ()
        if named and not reading.choices and reading.kind in ("clarify", "not_understood", "reply"):
            # "with Jim Carrey": evidence toward their films, kept with the session; a message that
            # says nothing else still counts as a wish (and passes over a pending question).
            session = self._with_people(self._new_search_if_finished(session), named)
            reading = replace(reading, kind="reply", reply=reading.reply or InformReply(attributes=()))
        if reading.kind == "clarify":
            session = replace(session, offered=reading.choices, offered_liked=reading.choices_liked)
            return session.say("assistant", reading.clarify)
        if reading.kind == "more_like" and reading.item is not None:
            return self.handle_reply(session, self.more_like(reading.item), from_text=True)
        if reading.dropped:
            for item in reading.dropped:
                session = self.drop_item(session, item, typed=True)
            return session
        reply = reading.reply
        if reply is None:
            return session.say("assistant", self.not_understood(session))
        values = dict(self.choices(session))
        if values and isinstance(session.pending, Ask):
            # "Which decade?" is one question about several values: "yes" says none of them, and a
            # value typed is what a click on it does (the asked value is "no" when another is named).
            asked = session.pending.attribute
            if reply == AnswerReply(Answer.YES) and not self._names(text, asked):
                names = ", ".join(values.values())
                return session.say("assistant", f"Which one? {names}, or don't care.")
            if (
                isinstance(reply, InformReply)
                and any(a in values for a in reply.attributes)
                and asked not in (*reply.attributes, *reply.unwanted)
            ):
                reply = replace(reply, unwanted=(*reply.unwanted, asked))
        if isinstance(reply, InformReply):
            if reading.replaces_wishes and session.wishes and not session.finished:
                session = self._new_search(session, "Okay, forgetting what you asked before.")
            session = self._new_search_if_finished(session)
            if reply.attributes or reply.liked_items:
                wishes = (*session.wishes, text[:MAX_WISH_CHARACTERS])[-MAX_WISHES:]
                session = replace(session, wishes=wishes)
        return self.handle_reply(session, reply, from_text=True)

    def handle_reply(
        self, session: ChatSession, reply: UserReply, from_text: bool = False, label: str | None = None
    ) -> ChatSession:
        """Apply one reply (from text or a button) and let the policy act on the new state."""
        if session.finished:
            return session.say("assistant", "We are done here: press Restart to look for something else.")
        if not from_text:  # a click: shown as the button's label, or described
            session = session.say("user", label or self.describe_reply(session, reply))
        session = replace(session, offered=())
        pending = session.pending
        if isinstance(reply, QuitReply):
            state = transition(session.state, pending, reply).state
            return replace(session, state=state, pending=None).say("assistant", "Alright, bye for now!")
        if pending is None and not isinstance(reply, InformReply):
            return session.say(
                "assistant", "Tell me first what you are looking for: a genre, a mood, a title you like."
            )
        if isinstance(reply, AnswerReply) and not isinstance(pending, Ask):
            return session.say(
                "assistant", "Sorry, which item do you mean? Click one, or tell me what to change."
            )
        if isinstance(reply, AcceptReply):
            if not isinstance(pending, Recommend) or reply.item not in pending.items:
                return session.say("assistant", "That one was not in the list: pick one of the shown items.")
            state = transition(session.state, pending, reply).state
            title = self.catalog.items[reply.item].title
            session = replace(session, state=state, pending=None, accepted_item=reply.item)
            return session.say(
                "assistant",
                f"Great choice: {title}. Enjoy! Tell me what you would like next, or press Restart.",
            )
        if isinstance(reply, RejectReply) and not isinstance(pending, Recommend):
            return session.say(
                "assistant", "Nothing is on the table yet: tell me what you would like instead."
            )
        state = transition(session.state, pending, reply).state
        session = replace(session, state=state, pending=None)
        return self.next_action(session)

    def drop_item(self, session: ChatSession, item: int, typed: bool = False) -> ChatSession:
        """ "Not this one" on a card, or "not the third one" `typed`: the film leaves the list on
        screen and is not shown again; the rest of the list stays. Dropping the last one is "none
        of these"."""
        pending = session.pending
        if session.finished or not isinstance(pending, Recommend) or item not in pending.items:
            return session.say("assistant", "That film is not on the list now.")
        title = self.catalog.items[item].title
        if not typed:
            session = session.say("user", f"Not {title}")
        rest = tuple(i for i in pending.items if i != item)
        if not rest:
            return self.handle_reply(session, RejectReply(), from_text=True)
        state = session.state.evolve(rejected_items=(*session.state.rejected_items, item))
        return replace(session, state=state, pending=Recommend(rest)).say(
            "assistant", f"Okay, not {title}. Pick one of the others, or say what to change."
        )

    def more_like_item(self, session: ChatSession, item: int) -> ChatSession:
        """ "More like this" on a card: the film becomes a liked film and a new list follows."""
        pending = session.pending
        if session.finished or not isinstance(pending, Recommend) or item not in pending.items:
            return session.say("assistant", "That film is not on the list now.")
        label = f"More like {self.catalog.items[item].title}"
        return self.handle_reply(session, self.more_like(item), label=label)

    def more_like(self, item: int) -> InformReply:
        """ "More like this one": the item becomes a liked item, evidence toward items similar to
        it (see `policy.belief`). The list it was in counts as seen, so its items are not shown
        again."""
        return InformReply(attributes=(), liked_items=(item,))

    def _names(self, text: str, attribute: int) -> bool:
        """Whether `text` names `attribute` itself ("the 90s"), not just agrees ("yes")."""
        for reply in self.understander.understand(text).of_type(InformReply):
            assert isinstance(reply, InformReply)
            if attribute in reply.attributes:
                return True
        return False

    def _with_people(self, session: ChatSession, named: tuple[tuple[Person, bool], ...]) -> ChatSession:
        """The session with the people named added as wanted or unwanted; a later statement about
        a person overrides an earlier one."""
        wanted, unwanted = list(session.with_people), list(session.without_people)
        for person, liked in named:
            keep, drop = (wanted, unwanted) if liked else (unwanted, wanted)
            if person.name in drop:
                drop.remove(person.name)
            if person.name not in keep:
                keep.append(person.name)
        return replace(session, with_people=tuple(wanted), without_people=tuple(unwanted))

    def people_evidence(self, session: ChatSession) -> FloatArray | None:
        """+PERSON_WEIGHT for every film of a person asked for, minus it for one asked against."""
        if self.people is None or not (session.with_people or session.without_people):
            return None
        from crs.language.people import person_key

        evidence = np.zeros(self.catalog.n_items)
        for names, sign in ((session.with_people, 1.0), (session.without_people, -1.0)):
            for name in names:
                person = self.people.people.get(person_key(name))
                if person is not None:
                    evidence[np.asarray(person.films, dtype=np.int64)] += sign * PERSON_WEIGHT
        return evidence

    def _new_search_if_finished(self, session: ChatSession) -> ChatSession:
        """A new wish after the search ended starts the next search; the chat so far stays."""
        if not session.finished:
            return session
        return self._new_search(session, "A new search, then.")

    def _new_search(self, session: ChatSession, note: str) -> ChatSession:
        """The next search, its state fresh, with the chat so far and `note` said."""
        fresh = self.start(session.seed + 1, session.policy, session.state.user, session.log_id)
        return replace(fresh, messages=session.messages + (ChatMessage("assistant", note),))

    def pick_offered(self, session: ChatSession, item: int | None) -> ChatSession:
        """A film picked from a "Did you mean ...?" (None: "neither"): taken as the person named
        it, liked or not, exactly as if they had typed its full title."""
        if item is None:
            session = replace(session, offered=()).say("user", "Neither")
            return session.say("assistant", "Okay: tell me the title with its year, or another film.")
        if item not in session.offered:
            return session.say("assistant", "That film was not offered: type its title instead.")
        liked = session.offered_liked
        reply = InformReply(
            attributes=(), liked_items=(item,) if liked else (), disliked_items=() if liked else (item,)
        )
        title = self.catalog.items[item].title
        return self.handle_reply(self._new_search_if_finished(session), reply, label=title)

    def named_items(self, session: ChatSession) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The items the person named as liked and as disliked so far, in the order named."""
        liked: list[int] = []
        disliked: list[int] = []
        for exchange in session.state.history:
            if isinstance(exchange.reply, InformReply):
                liked.extend(exchange.reply.liked_items)
                disliked.extend(exchange.reply.disliked_items)
        return tuple(dict.fromkeys(liked)), tuple(dict.fromkeys(disliked))

    def remove_constraint(self, session: ChatSession, attribute: int) -> ChatSession:
        """Forget one understood preference (liked or disliked attribute) and re-plan."""
        state = session.state
        if attribute not in state.accepted_attributes and attribute not in state.rejected_attributes:
            return session
        state = state.evolve(
            accepted_attributes=tuple(a for a in state.accepted_attributes if a != attribute),
            rejected_attributes=tuple(a for a in state.rejected_attributes if a != attribute),
            history=tuple(e for e in state.history if not _mentions(e.action, e.reply, attribute)),
        )
        name = self.catalog.attributes[attribute].name
        session = replace(session, state=state, pending=None).say("assistant", f"Forgot {name!r}.")
        if not state.accepted_attributes and not state.rejected_attributes:
            return session.say("assistant", "What else would you like?")
        return self.next_action(session)

    # --- the system's turn --------------------------------------------------------------------

    def next_action(self, session: ChatSession) -> ChatSession:
        if session.finished:
            return session.say("assistant", "We ran out of turns: press Restart to try again.")
        rng = np.random.default_rng([session.seed, session.state.turn])
        # The person's words are embedded once per turn: the action and its reason share them.
        policy, evidence = self.policy_for(session), self.evidence(session)
        if evidence is not None and hasattr(policy, "belief"):
            action = policy.act(session.state, rng, evidence=evidence)  # type: ignore[call-arg]
        else:
            action = policy.act(session.state, rng)
        if isinstance(action, GiveUp):
            state = transition(session.state, action, None).state
            text = "Nothing in the catalog fits all of that. Remove a preference on the right, or Restart."
            return replace(session, state=state, pending=None).say("assistant", text)
        session = replace(session, pending=action)
        if isinstance(action, Ask):
            question = self.question(action.attribute, session)
            return session.say("assistant", question, self.why(session, evidence))
        assert isinstance(action, Recommend)
        text = self.recommendation(action, session) + "\n\n" + self.explain_list(session, action)
        return session.say("assistant", text, self.why(session, evidence), action.items)

    # --- words ----------------------------------------------------------------------------------

    def question(self, attribute: int, session: ChatSession | None = None) -> str:
        if self.questions is not None:
            return self.questions.question(attribute, _words(session))
        from crs.language import generation

        return generation.ask_attribute(
            self.catalog.attributes[attribute], _words(session), domain=self.domain
        )

    def choices(self, session: ChatSession) -> tuple[tuple[int, str], ...]:
        """The values offered for the pending question when its group is asked as one multiple-choice
        question ("Which decade?"): (attribute, display name) pairs; empty for a yes/no question."""
        pending, rules = session.pending, self.questions
        if not isinstance(pending, Ask) or rules is None or not rules.is_choice(pending.attribute):
            return ()
        values = rules.choices(pending.attribute, session.state.asked_attributes)
        return tuple((value, rules.display_name(value)) for value in values)

    def choose(self, session: ChatSession, attribute: int) -> ChatSession:
        """A value picked for a multiple-choice question. The protocol stays one attribute per
        question: the asked value is a "yes"; another is an inform of it and a "no" to the asked one."""
        pending = session.pending
        if not isinstance(pending, Ask) or attribute not in dict(self.choices(session)):
            return session.say("assistant", "That is not one of the choices: pick one of the buttons.")
        label = dict(self.choices(session))[attribute]  # "1990s", not "Yes": what the person clicked
        if attribute == pending.attribute:
            return self.handle_reply(session, AnswerReply(Answer.YES), label=label)
        inform = InformReply(attributes=(attribute,), unwanted=(pending.attribute,))
        return self.handle_reply(session, inform, label=label)

    def recommendation(self, action: Recommend, session: ChatSession | None = None) -> str:
        from crs.language import generation

        return generation.present(self.catalog, action.items, _words(session))

    def why(self, session: ChatSession, evidence: FloatArray | None = None) -> str | None:
        explain = getattr(self.policy_for(session), "explain", None)
        if explain is None:
            return None
        return str(explain(session.state, evidence) if evidence is not None else explain(session.state))

    def evidence(self, session: ChatSession) -> FloatArray | None:
        """Everything the policy weighs besides the dialogue state: the person's own words (the
        retriever) and the people they asked for or against; None when there is neither."""
        text, people = self.text_evidence(session), self.people_evidence(session)
        if text is None or people is None:
            return text if people is None else people
        return text + people

    def in_play(self, session: ChatSession) -> tuple[int, int] | None:
        """(films the policy still considers, as its "Why?" counts them; the fewest of them that
        together are LIKELY_SHARE likely to hold the person's film), or None for a policy without
        a belief. The first stays in the thousands while evidence is soft; the second is what
        narrows as the person answers."""
        belief = getattr(self.policy_for(session), "belief", None)
        if belief is None:
            return None
        evidence = self.evidence(session)
        items, probabilities, _ = (
            belief(session.state, evidence) if evidence is not None else belief(session.state)
        )
        ordered = np.sort(np.asarray(probabilities))[::-1]
        likely = int(np.searchsorted(np.cumsum(ordered), LIKELY_SHARE * ordered.sum()) + 1)
        return len(items), min(likely, len(items))

    def text_evidence(self, session: ChatSession) -> FloatArray | None:
        """How well each item matches the person's own words (the sum of the retriever's
        log-likelihoods of their last wishes, or the context ranker's scores of all they typed),
        or None without a retriever or words."""
        if self.context_ranker is not None:
            return self.conversation_evidence(session)
        if self.retriever is None or not session.wishes:
            return None
        return np.sum([self.retriever.text_log_likelihood(text) for text in session.wishes], axis=0)

    def person_messages(self, session: ChatSession) -> tuple[str, ...]:
        """What the person typed or clicked, in order (the ranker reads them as the seeker's)."""
        return tuple(m.text for m in session.messages if m.role == "user")

    def _read_conversation(self, messages: tuple[str, ...]) -> npt.NDArray[np.float32]:
        assert self.context_ranker is not None
        ranker = self.context_ranker
        return ranker.features(ranker.read((text, True) for text in messages))

    def conversation_evidence(self, session: ChatSession) -> FloatArray | None:
        """The context ranker's score of every film, less the policy's own prior: the belief adds
        its prior back, so before any answer it ranks exactly as the ReDial benchmark does (our
        own messages are not read: their lists would count as films a recommender named)."""
        messages = self.person_messages(session)
        if self.context_ranker is None or not messages:
            return None
        features = self._conversation_features(messages)
        scores = np.asarray(features @ self.context_ranker.weight_vector(), dtype=np.float64)
        prior_logits = getattr(self.policy_for(session), "prior_logits", None)
        if callable(prior_logits):
            prior = np.asarray(prior_logits(session.state.user.id))
            scores = scores - np.where(np.isfinite(prior), prior, 0.0)
        return scores

    def ranker_reasons(self, session: ChatSession, item: int) -> str:
        """ "Recommenders suggested it for requests like yours." from the context ranker's
        features that lift `item` most; "" without a ranker."""
        messages = self.person_messages(session)
        if self.context_ranker is None or not messages:
            return ""
        reasons = self.context_ranker.reasons(self._conversation_features(messages), item)
        return " ".join(reason[0].upper() + reason[1:] + "." for reason in reasons)

    def explain_item(self, session: ChatSession, item: int) -> str:
        """Why this item: what the user said, which of its attributes match, who else liked it."""
        if self.graph is None:
            return ""
        from crs.language import generation

        return generation.explain(self.graph.explain(item, session.state), _words(session))

    def explain_list(self, session: ChatSession, action: Recommend) -> str:
        """ "Why this?" for the top of a list: the graph path of its first items, which of the
        films the person named as liked it is closest to, and who they asked for is in it."""
        reasons = [
            " ".join(
                part
                for part in (
                    self.explain_item(session, item),
                    self.likeness(session, item),
                    self.people_in(session, item),
                    self.ranker_reasons(session, item),
                )
                if part
            )
            for item in action.items[:3]
        ]
        return "\n".join(f"Why #{rank}? {reason}" for rank, reason in enumerate(reasons, 1) if reason)

    def likeness(self, session: ChatSession, item: int) -> str:
        """ "It is much like The Matrix (1999), which you liked." for the named film `item` is
        most similar to, when it is similar enough to say so; "" otherwise."""
        liked, _ = self.named_items(session)
        similarity = getattr(self.policy_for(session), "similarity_to", None)
        if not liked or similarity is None:
            return ""
        score, nearest = max((float(similarity(named)[item]), named) for named in liked)
        if score < LIKENESS_TO_SAY:
            return ""
        return f"It is much like {self.catalog.items[nearest].title}, which you liked."

    def people_in(self, session: ChatSession, item: int) -> str:
        """ "Jim Carrey is in it, as you asked." when a person asked for made or leads in `item`."""
        film = self.details.get(item) if self.details is not None else None
        if film is None or not session.with_people:
            return ""
        asked = [name for name in session.with_people if name in film.people]
        if not asked:
            return ""
        directed = all(name in film.directors for name in asked)
        verb = "directed it" if directed else ("is in it" if len(asked) == 1 else "are in it")
        return f"{' and '.join(asked)} {verb}, as you asked."

    def cards(self, session: ChatSession) -> tuple[tuple[int, str], ...]:
        """(item, card) for the films on screen, when the catalog has details and a list is shown."""
        if self.details is None or session.finished or not isinstance(session.pending, Recommend):
            return ()
        return tuple((item, self.card(rank, item)) for rank, item in enumerate(session.pending.items, 1))

    def card(self, rank: int, item: int) -> str:
        """One film as a card in Markdown: title, genres, who made it and is in it, the plot line."""
        from crs.language import generation

        film = self.details.get(item) if self.details is not None else None
        return generation.card(self.catalog, item, rank, film)

    def describe_reply(self, session: ChatSession, reply: UserReply) -> str:
        if isinstance(reply, AnswerReply):
            return {Answer.YES: "Yes", Answer.NO: "No", Answer.DONT_KNOW: "Don't care"}[reply.answer]
        if isinstance(reply, AcceptReply):
            if not 0 <= reply.item < self.catalog.n_items:  # a stale or forged click
                return "I'll take that one"
            return f"I'll take {self.catalog.items[reply.item].title}"
        if isinstance(reply, RejectReply):
            return "None of these"
        if isinstance(reply, QuitReply):
            return "Bye"
        names = [self.catalog.attributes[a].name for a in reply.attributes]
        return "I like " + ", ".join(names)

    def help_text(self, session: ChatSession) -> str:
        from crs.language import generation

        return generation.help_text()

    def not_understood(self, session: ChatSession) -> str:
        if isinstance(session.pending, Ask):
            question = self.question(session.pending.attribute)
            if self.choices(session):
                return f"Sorry, I did not get that. {question} (pick one, or don't care)"
            return f"Sorry, I did not get that. {question} (yes / no / don't care)"
        return "Sorry, I did not get that. Tell me a genre, a mood, a decade or a title you like."

    # --- export ---------------------------------------------------------------------------------

    def give_feedback(self, session: ChatSession, message: int, liked: bool | None) -> ChatSession:
        """A thumbs up or down on one of the bot's messages (the last one given counts); on a
        recommendation list it judges that list's items. Other indices change nothing."""
        if not 0 <= message < len(session.messages) or session.messages[message].role != "assistant":
            return session
        judged = Feedback(message, liked, session.messages[message].items)
        kept = tuple(f for f in session.feedback if f.message != message)
        return replace(session, feedback=(*kept, judged))

    def log_entry(self, session: ChatSession, event: Mapping[str, Any]) -> dict[str, Any]:
        """One chat log line (`crs.chat_log`): the conversation as it stands, and what just happened."""
        from crs.chat_log import now_utc

        record = self.transcript_record(session).to_json()
        ids = [item.id for item in self.catalog.items]
        return {
            "session": session.log_id,
            "conversation": session.seed,
            "time": now_utc(),
            "event": dict(event),
            "feedback": [
                {"message": f.message, "liked": f.liked, "items": [ids[i] for i in f.items]}
                for f in session.feedback
            ],
            **record,
        }

    def transcript_jsonl(self, session: ChatSession) -> str:
        """The conversation in the evaluation transcript format (one JSON object, one line), made
        readable: both sides' words, the titles of every item it names, and what was understood.
        Saved mid-conversation, its termination is "in_progress"."""
        return json.dumps(self.transcript_record(session).to_json(), ensure_ascii=False) + "\n"

    def transcript_record(self, session: ChatSession) -> ConversationRecord:
        from crs.evaluation.records import RunInfo, build_record, history_records

        run = RunInfo(
            self.dataset.name, "chat", session.policy or self.default_policy, "person", session.seed
        )
        accepted = session.accepted_item
        state = session.state
        names = [a.name for a in self.catalog.attributes]
        liked_items, disliked_items = self.named_items(session)
        actions = [e.action for e in state.history] + [session.pending]
        shown = {i for action in actions if isinstance(action, Recommend) for i in action.items}
        named = (
            shown | set(liked_items) | set(disliked_items) | ({accepted} if accepted is not None else set())
        )
        return build_record(
            run,
            self.catalog,
            conversation_id=0,
            user_id=WEB_USER,
            # A person has no hidden target: the accepted item stands for it ("" while none is).
            target=accepted,
            turns=history_records(self.catalog, state.history),
            accepted_item=accepted,
            termination=state.termination or "in_progress",
            extra={
                "messages": [{"role": m.role, "text": m.text} for m in session.messages],
                "titles": {str(self.catalog.items[i].id): self.catalog.items[i].title for i in sorted(named)},
                "understood": {
                    "likes": [names[a] for a in state.accepted_attributes],
                    "does_not_want": [names[a] for a in state.rejected_attributes],
                    "films_like": [self.catalog.items[i].title for i in liked_items],
                    "nothing_like": [self.catalog.items[i].title for i in disliked_items],
                    "with_people": list(session.with_people),
                    "without_people": list(session.without_people),
                },
            },
        )


def _words(session: ChatSession | None) -> random.Random:
    """The wording's own random stream: seeded by the session and turn, so a chat replays exactly."""
    if session is None:
        return random.Random(0)
    return random.Random(session.seed * 1_000_003 + session.state.turn)


def _mentions(action: SystemAction | None, reply: UserReply | None, attribute: int) -> bool:
    if isinstance(action, Ask) and action.attribute == attribute:
        return True
    return isinstance(reply, InformReply) and (attribute in reply.attributes or attribute in reply.unwanted)


def build_bot(settings: Settings, use_retriever: bool = False, progress: Progress | None = None) -> ChatBot:
    """Everything a chat needs for the `[chat]` settings' catalog: the dataset, a trained policy
    with the chat's scorer, the reader and, with `use_retriever`, the embedding retriever (built
    once per catalog, then cached): it maps words the catalog does not use to attributes and
    ranks items by the person's own words."""
    from crs.data import load_dataset
    from crs.factory import build_policy, build_scorer, params_of, takes_parameter
    from crs.language.understanding import Understander
    from crs.questions import DEFAULT_BANK, resolve_questions
    from knowledge_graph import AttributeGraph

    chat = settings.chat
    dataset = load_dataset(chat.dataset, settings.data_dir, split_seed=settings.data.split_seed)
    cache_dir = settings.cache_dir
    scorer = build_scorer(chat.scorer, settings.scorer_params(chat.scorer), dataset, cache_dir, progress)
    # A person is asked only what the question bank allows: the dataset's own bank unless the
    # policy's parameters bring question rules; every policy of the chat shares them.
    chosen = settings.policy_params(chat.policy)
    questions = dict(chosen.get("questions") or {"bank": DEFAULT_BANK})

    from crs.data.redial_dataset import DialogueDataset

    real_dialogues = isinstance(dataset, DialogueDataset)

    def make_policy(name: str) -> Policy:
        params = dict(chosen if name == chat.policy else settings.policy_params(name))
        if takes_parameter(name, "questions"):
            params["questions"] = questions
        if real_dialogues and "similar_weight" in params_of(name):
            # The context ranker already weighs the films named (co-mentions, MovieLens, shared
            # attributes); the policy's own "like X" on top took ReDial valid new-item R@10 from
            # 0.216 to 0.169. Named films are still ruled out (the person knows them).
            params["similar_weight"] = 0.0
        return build_policy(name, params, dataset, scorer, cache_dir, progress)

    retriever = None
    if use_retriever:
        from crs.retrieval import open_retriever

        retriever = open_retriever(
            dataset.catalog, dataset.name, cache_dir, progress=progress, chroma_url=chat.chroma_url
        )
        retriever.warm_up()
    understander = Understander(
        dataset.catalog,
        nearest_attributes=retriever.nearest_attributes if retriever else None,
        popularity=dataset.popularity,
    )
    context_ranker = None
    if real_dialogues:
        from crs.scoring.context_ranker import open_context_ranker

        assert isinstance(dataset, DialogueDataset)
        context_ranker = open_context_ranker(
            dataset, cache_dir, use_retriever=use_retriever, progress=progress, retriever=retriever
        )
    policy = make_policy(chat.policy)
    details = film_details_for(dataset, settings.data_dir)
    # Whatever the policy builds on first use is built now, not while the first visitor waits.
    warm_up = getattr(policy, "warm_up", None)
    if callable(warm_up):
        warm_up()
    return ChatBot(
        dataset,
        policy,
        understander,
        AttributeGraph(dataset),
        policy_factory=make_policy,
        retriever=retriever,
        questions=resolve_questions(questions, dataset.catalog, dataset.name),
        details=details,
        context_ranker=context_ranker,
    )


def film_details_for(dataset: Dataset, data_dir: str | None) -> CatalogDetails | None:
    """Directors, cast and plots for a film catalog, from ReDial's descriptions in the data folder;
    None for music, or when the folder has no `redial/movie_text.jsonl` (the chat then shows
    titles and genres only)."""
    from crs.data.film_details import MOVIE_TEXT, load_film_details
    from crs.data.location import resolve_data_dir

    if dataset.name.startswith("lastfm"):
        return None
    folder = resolve_data_dir(data_dir)
    if not (folder / MOVIE_TEXT).is_file():
        return None
    return load_film_details(folder, dataset.catalog)
