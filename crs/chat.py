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

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

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
    from crs.language.understanding import Understander
    from crs.progress import Progress
    from crs.questions import QuestionRules
    from crs.retrieval import Retriever
    from crs.settings import Settings
    from knowledge_graph import AttributeGraph

Role = Literal["user", "assistant"]
# A person may take longer than the simulated protocol's 15 turns; the policy still plans with it.
CHAT_MAX_TURNS = 40
WEB_USER = "web"
MAX_WISHES = 3  # the retriever reads the person's last few wishes, not the whole chat
MAX_WISH_CHARACTERS = 500


LIKENESS_TO_SAY = 0.4  # similarity (0-1, see crs.scoring.similarity) from which "much like X" is said


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    text: str
    why: str | None = None  # an explanation shown folded under the message


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
    transcript: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def finished(self) -> bool:
        return self.state.finished

    def say(self, role: Role, text: str, why: str | None = None) -> ChatSession:
        return replace(self, messages=self.messages + (ChatMessage(role, text, why),))


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
    ) -> None:
        self.dataset = dataset
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
        # LastFM's tags are music ("Do you like jazz?"); everything else is worded as films.
        self.domain = "music" if dataset.name.startswith("lastfm") else "movies"

    # --- starting ---------------------------------------------------------------------------

    def policy_for(self, session: ChatSession) -> Policy:
        name = session.policy or self.default_policy
        with self._policies_lock:
            if name not in self._policies:
                if self._policy_factory is None:
                    raise ValueError(f"policy {name!r} is not available in this chat")
                self._policies[name] = self._policy_factory(name)
            return self._policies[name]

    def start(self, seed: int = 0, policy: str = "", user: User | None = None) -> ChatSession:
        """A new conversation. `user` is who is talking (their history and friends inform the
        policy's prior): the evaluation passes the target pair's user; a visitor is anonymous."""
        state = new_state(user or User(WEB_USER), self.max_turns)
        session = ChatSession(state=state, seed=seed, policy=policy or self.default_policy)
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
        session = session.say("user", shown)
        understanding = self.understander.understand(text, session.pending)
        reading = read_message(understanding, session.pending)
        if reading.kind == "restart":
            return self.start(session.seed + 1, session.policy, session.state.user)
        if reading.kind == "help":
            return session.say("assistant", self.help_text(session))
        if reading.kind == "clarify":
            return session.say("assistant", reading.clarify)
        if reading.kind == "more_like" and reading.item is not None:
            return self.handle_reply(session, self.more_like(reading.item), from_text=True)
        if reading.reply is None:
            return session.say("assistant", self.not_understood(session))
        if session.finished and isinstance(reading.reply, InformReply):
            # A new wish after the search ended starts the next search; the chat so far stays.
            fresh = self.start(session.seed + 1, session.policy, session.state.user)
            session = replace(
                fresh, messages=session.messages + (ChatMessage("assistant", "A new search, then."),)
            )
        if isinstance(reading.reply, InformReply) and (reading.reply.attributes or reading.reply.liked_items):
            session = replace(session, wishes=(session.wishes + (text[:MAX_WISH_CHARACTERS],))[-MAX_WISHES:])
        return self.handle_reply(session, reading.reply, from_text=True)

    def handle_reply(
        self, session: ChatSession, reply: UserReply, from_text: bool = False, label: str | None = None
    ) -> ChatSession:
        """Apply one reply (from text or a button) and let the policy act on the new state."""
        if session.finished:
            return session.say("assistant", "We are done here: press Restart to look for something else.")
        if not from_text:  # a click: shown as the button's label, or described
            session = session.say("user", label or self.describe_reply(session, reply))
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

    def more_like(self, item: int) -> InformReply:
        """ "More like this one": the item becomes a liked item, evidence toward items similar to
        it (see `policy.belief`). The list it was in counts as seen, so its items are not shown
        again."""
        return InformReply(attributes=(), liked_items=(item,))

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
        policy, evidence = self.policy_for(session), self.text_evidence(session)
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
        return session.say("assistant", text, self.why(session, evidence))

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

    def text_evidence(self, session: ChatSession) -> FloatArray | None:
        """How well each item matches the person's own words (the sum of the retriever's
        log-likelihoods of their last wishes), or None without a retriever or wishes."""
        if self.retriever is None or not session.wishes:
            return None
        return np.sum([self.retriever.text_log_likelihood(text) for text in session.wishes], axis=0)

    def explain_item(self, session: ChatSession, item: int) -> str:
        """Why this item: what the user said, which of its attributes match, who else liked it."""
        if self.graph is None:
            return ""
        from crs.language import generation

        return generation.explain(self.graph.explain(item, session.state), _words(session))

    def explain_list(self, session: ChatSession, action: Recommend) -> str:
        """ "Why this?" for the top of a list: the graph path of its first items, and which of
        the films the person named as liked it is closest to."""
        reasons = [
            " ".join(
                part for part in (self.explain_item(session, item), self.likeness(session, item)) if part
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

    def describe_reply(self, session: ChatSession, reply: UserReply) -> str:
        if isinstance(reply, AnswerReply):
            return {Answer.YES: "Yes", Answer.NO: "No", Answer.DONT_KNOW: "Don't care"}[reply.answer]
        if isinstance(reply, AcceptReply):
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

    def transcript_jsonl(self, session: ChatSession) -> str:
        """The conversation in the evaluation transcript format (one JSON object, one line), made
        readable: both sides' words, the titles of every item it names, and what was understood.
        Saved mid-conversation, its termination is "in_progress"."""
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
        record = build_record(
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
                },
            },
        )
        return json.dumps(record.to_json(), ensure_ascii=False) + "\n"


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
    from crs.factory import build_policy, build_scorer, takes_parameter
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

    def make_policy(name: str) -> Policy:
        params = dict(chosen if name == chat.policy else settings.policy_params(name))
        if takes_parameter(name, "questions"):
            params["questions"] = questions
        return build_policy(name, params, dataset, scorer, cache_dir, progress)

    retriever = None
    if use_retriever:
        from crs.retrieval import open_retriever

        retriever = open_retriever(dataset.catalog, dataset.name, cache_dir, progress=progress)
        retriever.warm_up()
    understander = Understander(
        dataset.catalog, nearest_attributes=retriever.nearest_attributes if retriever else None
    )
    policy = make_policy(chat.policy)
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
    )
