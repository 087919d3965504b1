"""Whole-chatbot evaluation: the chat (`crs.chat.ChatBot`) talks with an LLM-simulated user.

One conversation goes: the policy's action -> the chat's words -> the simulated user's words ->
the chat's own understanding -> dialogue state -> the policy's next action. Everything the rule
protocol measures is measured the same way (SR@k, AT, hDCG over the system's turns t = 0..13),
and understanding now costs turns too:

- **Turns.** Turn 1 is the user's opening; then *every* message of the chat counts as one system
  turn, t = 0, 1, ...: a question, a list, and also "Sorry, I did not get that" or "Did you mean
  ...?" when the chat did not understand. A misunderstanding is a turn the person had to spend,
  so it is honest to count it. After `max_turns - 1` system messages the conversation ends
  (`max_turns`). The chat's closing words after an accepted item or a goodbye are not turns.
- **After a clarification** the user says the same decision again in plain words (the template:
  people repeat themselves more simply); an opening the chat did not understand is replaced by
  a new one with other attributes of the target.
- **The chat** is the one people use, with the run's policy, its reader without the embedding
  retriever (loading MiniLM in every evaluation worker costs more than it tells) and without
  graph explanations (the simulated user never reads the list text: see `simulators.llm_user`).
  Its state uses the protocol's `max_turns`, and the target pair's real user (history, friends),
  as the rule protocol does.
- **Agreement**: the share of user replies whose reply, as the chat understood it (the reply the
  state received, or nothing when it asked back), equals the simulator's decision. The words
  were checked against the same reader before they were sent, so agreement is partly guaranteed;
  first-draft agreement (the model's first words kept) says how often the model got it right.

- **Words like real seekers'** (`[simulator.llm] phrasing = "seekers"`): the context also holds
  ReDial seekers' messages (`simulators.seeker_phrases`, read from the `redial` folder next to the
  run's dataset), and the user names films its target pair's real user liked in training.

The per-process context (chat, reader, language model, phrases) is built on first use in each process,
after the fork of `--workers` (llama.cpp's threads do not survive a fork), and again for each new
run in the process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.evaluation.context import RunContext
from crs.evaluation.records import ConversationRecord, TurnRecord, turn_record
from crs.llm.base import LLMBackend
from crs.protocol import conversation_rngs, target_at
from crs.settings import LLMSettings
from crs.types import AcceptReply, Ask, Catalog, Exchange, InformReply, Recommend, UserReply

if TYPE_CHECKING:
    from crs.chat import ChatBot, ChatSession
    from simulators.llm_user import Utterance
    from simulators.seeker_phrases import SeekerPhrases

# The persona comes from SeedSequence([seed, conversation, 7]), so the user's own stream draws
# exactly what the rule user's draws.
PERSONA_STREAM = 7
SPOKEN_KEYS = (
    "agreement",
    "first_draft_agreement",
    "regenerated_rate",
    "seeker_rate",
    "template_rate",
    "tokens_per_conversation",
    "llm_seconds_per_conversation",
    "seconds_per_conversation",
    "conversations_per_minute",
    "clarifications_per_conversation",
    "decision_agreement",
)


@dataclass
class _Context:
    run: RunContext
    pid: int
    bot: ChatBot
    backend: LLMBackend | None
    phrases: SeekerPhrases | None = None  # real seekers' words ([simulator.llm] phrasing = "seekers")


_CONTEXT: _Context | None = None  # one run at a time per process


def _context(run: RunContext) -> _Context:
    global _CONTEXT
    # The run itself is kept and compared, not its id(): a finished run's id is free for the next
    # RunContext, which would then get a chat and model built for another dataset, policy or
    # backend. The pid: a forked worker builds its own model rather than reuse its parent's.
    context = _CONTEXT
    if context is None or context.run is not run or context.pid != os.getpid():
        from crs.chat import ChatBot
        from simulators.llm_user import shared_understander

        _CONTEXT = None  # drop an earlier run's chat and model before building this one's
        # Every worker keeps [llm] threads as it is: llama.cpp's numbers (and so the words) depend
        # on the thread count, and a run must not depend on --workers.
        llm = run.spec.llm
        backend = None if llm.backend == "none" else shared_backend(llm, run.cache_dir)
        understander = shared_understander(run.dataset.catalog, run.dataset.popularity)
        bot = ChatBot(run.dataset, run.policy, understander, max_turns=run.spec.max_turns)
        user = run.spec.llm_user
        phrases = None
        if backend is not None and user.mode == "phrase" and user.phrasing == "seekers":
            from simulators.seeker_phrases import open_seeker_phrases

            if bot.domain != "movies":
                raise ValueError(
                    f'[simulator.llm] phrasing = "seekers" borrows the words of ReDial\'s movie seekers; '
                    f'{bot.domain} needs phrasing = "fixed"'
                )

            # ReDial sits next to the run's dataset in the data directory.
            phrases = open_seeker_phrases(run.dataset.source.parent, understander, run.cache_dir)
        context = _CONTEXT = _Context(run, os.getpid(), bot, backend, phrases)
    return context


_BACKENDS: dict[tuple[int, str], LLMBackend] = {}


def shared_backend(llm: LLMSettings, cache_dir: Path | None) -> LLMBackend:
    """One backend per process and settings: runs in one process (a benchmark, the tests) share
    the loaded model instead of loading and warming it up again."""
    from crs.llm import make_backend

    key = (os.getpid(), json.dumps({**dataclasses.asdict(llm), "cache_dir": str(cache_dir)}, sort_keys=True))
    if key not in _BACKENDS:
        _BACKENDS[key] = make_backend(llm, cache_dir)
    return _BACKENDS[key]


@dataclass
class _Turn:
    """A system turn while the conversation runs (made into a TurnRecord at the end)."""

    turn: int
    t: int
    act: str  # ask | recommend | give_up | clarify
    system_text: str
    action: Any = None
    user_text: str | None = None
    intent: str | None = None
    words: str | None = None
    applied: UserReply | None = None  # the reply the chat's state received for this action
    decision_ms: float | None = None


@dataclass
class _Tally:
    utterances: int = 0
    first_draft_ok: int = 0
    regenerated: int = 0
    seeker: int = 0  # a real seeker's message said as it stands
    template: int = 0
    llm_utterances: int = 0  # utterances the model was asked to word (not the plain repeats)
    agreed: int = 0
    decided_agreed: int = 0  # decide mode: the model's decision equals the ground truth
    tokens: int = 0
    llm_seconds: float = 0.0
    leaks: int = 0
    clarifications: int = 0

    def count(self, utterance: Utterance, asked_model: bool) -> None:
        self.utterances += 1
        self.tokens += utterance.tokens
        self.llm_seconds += utterance.llm_seconds
        self.leaks += utterance.leaks
        if asked_model:
            self.llm_utterances += 1
            if utterance.source == "llm":
                self.first_draft_ok += 1
            elif utterance.source == "regenerated":
                self.regenerated += 1
            elif utterance.source == "seeker":
                self.seeker += 1
            else:
                self.template += 1


def run_spoken_conversation(run: RunContext, conversation_id: int) -> ConversationRecord:
    """One conversation of the whole chat with an LLM-simulated user (see the module docstring).
    A failing language model stops the run (`LLMError`); any other failure ends this conversation
    only, recorded as an error, as in the rule protocol."""
    from crs.llm.base import LLMError

    try:
        return _converse(run, conversation_id)
    except LLMError:
        raise
    except Exception as error:
        return run.record(target_at(run.pairs, conversation_id), [], None, "error", {"error": repr(error)})


def _converse(run: RunContext, conversation_id: int) -> ConversationRecord:
    from simulators.llm_user import LLMUser, replies_match
    from simulators.persona import PROTOCOL_PERSONA, sample_persona
    from simulators.rule_based import SimulatorOptions

    spec, dataset = run.spec, run.dataset
    catalog = dataset.catalog
    started = time.perf_counter()
    context = _context(run)
    bot, user_settings = context.bot, spec.llm_user
    target = target_at(run.pairs, conversation_id)
    user_rng, policy_rng = conversation_rngs(spec.seed, conversation_id)
    persona_rng = np.random.default_rng(np.random.SeedSequence([spec.seed, conversation_id, PERSONA_STREAM]))
    persona = sample_persona(persona_rng) if user_settings.behaviour == "persona" else PROTOCOL_PERSONA
    options = SimulatorOptions(
        answer_noise=spec.answer_noise, dont_know=spec.dont_know, patience=spec.patience
    )
    tally = _Tally()
    extra: dict[str, Any] = {
        "simulator_mode": user_settings.mode,
        "persona": {
            "tone": persona.tone,
            "verbosity": persona.verbosity,
            "patience": persona.patience,
            "opening_attributes": persona.opening_attributes,
            "volunteer_rate": persona.volunteer_rate,
            "dont_know_rate": persona.dont_know_rate,
        },
    }
    try:
        user = LLMUser(
            catalog,
            target.item,
            options,
            backend=context.backend,
            understander=bot.understander,
            persona=persona,
            settings=user_settings,
            domain=bot.domain,
            temperature=spec.llm.temperature,
            phrases=context.phrases,
            liked_titles=_liked_titles(run, target.user_id, target.item),
        )
    except ValueError as error:
        return run.record(target, [], None, "error", {"error": str(error)})
    session = bot.start(seed=int(policy_rng.integers(2**31 - 1)), user=dataset.user(target.user_id))
    target_keys = catalog.items[target.item].attributes

    def agree(decision: UserReply, applied: UserReply | None) -> bool:
        return replies_match(catalog, decision, applied, target_keys)

    # Turn 1: the opening.
    opening = user.open(user_rng, system_text=session.messages[-1].text)
    tally.count(opening, asked_model=context.backend is not None)
    said: list[int] = list(getattr(opening.decision.reply, "attributes", ()))
    session, applied, last_ms = _say(bot, session, opening.text)
    tally.agreed += agree(opening.decision.reply, applied)
    understood = applied if isinstance(applied, InformReply) else InformReply(())
    turns = [
        turn_record(
            catalog,
            Exchange(1, None, understood),
            user_text=opening.text,
            user_intent=opening.decision.label,
            words=opening.source,
        )
    ]
    system_turns: list[_Turn] = []
    history: list[tuple[str, str]] = []  # decide mode: what the model saw and said
    termination: str | None = None
    pending_decision = opening.decision
    acted = applied is not None  # the chat's last message is a new action, not a question back
    t = 0
    while True:
        if session.finished:
            termination = session.state.termination
            break
        if t >= spec.max_turns - 1:
            termination = "max_turns"
            break
        system_text, action = session.messages[-1].text.strip(), session.pending
        kind = _kind(action) if acted and action is not None else "clarify"
        current = _Turn(
            turn=t + 2, t=t, act=kind, system_text=system_text, action=action, decision_ms=last_ms
        )
        system_turns.append(current)
        if kind == "clarify":
            tally.clarifications += 1
            if action is None:  # the opening was not understood: open again with other attributes
                utterance = user.open(user_rng, exclude=said, system_text=system_text)
                said += list(getattr(utterance.decision.reply, "attributes", ()))
                asked_model = context.backend is not None
            else:  # the reply was not understood: the same decision again, plainly
                utterance = user.template_utterance(pending_decision, action)
                asked_model = False
        else:
            assert action is not None
            turns_done = t + 1  # the opening and t system turns
            known = [*session.state.accepted_attributes, *session.state.rejected_attributes, *said]
            utterance = user.answer(action, system_text, turns_done, user_rng, known, tuple(history))
            asked_model = context.backend is not None
            if user_settings.mode == "decide":
                history.append((user.shown_text(system_text, action), utterance.text))
                tally.decided_agreed += agree(utterance.decision.reply, utterance.understood)
        tally.count(utterance, asked_model)
        pending_decision = utterance.decision
        current.user_text, current.intent, current.words = (
            utterance.text,
            utterance.decision.label,
            utterance.source,
        )
        session, applied, last_ms = _say(bot, session, utterance.text)
        tally.agreed += agree(utterance.decision.reply, applied)
        acted = applied is not None
        if applied is not None:
            answered = _action_turn(system_turns)
            if answered is not None:
                answered.applied = applied
            if isinstance(applied, AcceptReply) and applied.item != target.item:
                extra["accepted_other_item"] = catalog.items[applied.item].id
        t += 1
    accepted = session.state.accepted_item
    if termination == "success" and accepted != target.item:
        termination = "user_quit"  # it took an item that was not its target: the search failed
    seconds = time.perf_counter() - started
    extra.update(
        {
            "utterances": tally.utterances,
            "llm_utterances": tally.llm_utterances,
            "first_draft_ok": tally.first_draft_ok,
            "regenerated": tally.regenerated,
            "seeker": tally.seeker,
            "template": tally.template,
            "agreed": tally.agreed,
            "tokens": tally.tokens,
            "llm_seconds": round(tally.llm_seconds, 4),
            "seconds": round(seconds, 4),
            "title_leaks_dropped": tally.leaks,
            "clarifications": tally.clarifications,
        }
    )
    if user_settings.mode == "decide":
        extra["decided_agreed"] = tally.decided_agreed
        extra["decided"] = tally.utterances - 1 - tally.clarifications
    records = turns + [_turn_record(turn, catalog) for turn in system_turns]
    return run.record(target, records, accepted, termination, extra)  # type: ignore[arg-type]


LIKED_TITLES = 20  # of the person's best-known films, the ones a simulated user may name


def _liked_titles(run: RunContext, user_id: Any, target: int) -> tuple[str, ...]:
    """The best-known films of the target pair's real user (training interactions, never the
    target), as people type them: what a seeker names to say what they like."""
    from crs.language.titles import typed_title

    dataset = run.dataset
    history = [i for i in dataset.train.by_user.get(user_id, ()) if i != target]
    popular = sorted(history, key=lambda i: (-dataset.popularity[i], i))[:LIKED_TITLES]
    return tuple(typed_title(dataset.catalog.items[i].title) for i in popular)


def _say(bot: ChatBot, session: ChatSession, text: str) -> tuple[ChatSession, UserReply | None, float]:
    """The chat reads `text` and answers. Returns the new session, the reply its state received
    (None when it asked back instead) and the chat's time in ms (reading, policy, words)."""
    before = len(session.state.history)
    started = time.perf_counter()
    session = bot.handle_text(session, text)
    elapsed_ms = round((time.perf_counter() - started) * 1000.0, 4)
    applied = session.state.history[-1].reply if len(session.state.history) > before else None
    return session, applied, elapsed_ms


def _kind(action: Any) -> str:
    if isinstance(action, Ask):
        return "ask"
    if isinstance(action, Recommend):
        return "recommend"
    return "give_up"


def _action_turn(turns: list[_Turn]) -> _Turn | None:
    """The system turn whose action is pending (the last turn that was not a clarification)."""
    for turn in reversed(turns):
        if turn.act != "clarify":
            return turn
    return None


def _turn_record(turn: _Turn, catalog: Catalog) -> TurnRecord:
    texts: dict[str, Any] = {
        "system_text": turn.system_text,
        "user_text": turn.user_text,
        "user_intent": turn.intent,
        "words": turn.words,
        "decision_ms": turn.decision_ms,
    }
    if turn.act == "clarify" or turn.action is None:
        return TurnRecord(turn.turn, turn.act, t=turn.t, **texts)
    return turn_record(catalog, Exchange(turn.turn, turn.action, turn.applied), turn.t, **texts)


def spoken_summary(records: Iterable[ConversationRecord], wall_seconds: float) -> dict[str, Any]:
    """The language metrics of a run with the LLM user (empty for other simulators)."""
    rows = [r.extra for r in records if "utterances" in r.extra]
    if not rows:
        return {}
    n = len(rows)

    def total(key: str) -> float:
        return float(sum(row.get(key, 0) for row in rows))

    asked = total("llm_utterances")
    out: dict[str, Any] = {
        "agreement": total("agreed") / max(total("utterances"), 1.0),
        "first_draft_agreement": total("first_draft_ok") / asked if asked else None,
        "regenerated_rate": total("regenerated") / asked if asked else None,
        "seeker_rate": total("seeker") / asked if asked else None,
        "template_rate": total("template") / asked if asked else None,
        "tokens_per_conversation": total("tokens") / n,
        "llm_seconds_per_conversation": total("llm_seconds") / n,
        "seconds_per_conversation": total("seconds") / n,
        "conversations_per_minute": 60.0 * n / wall_seconds if wall_seconds > 0 else None,
        "clarifications_per_conversation": total("clarifications") / n,
        "title_leaks_dropped": int(total("title_leaks_dropped")),
    }
    decided = total("decided")
    if decided:
        out["decision_agreement"] = total("decided_agreed") / decided
    return out


__all__ = ["SPOKEN_KEYS", "run_spoken_conversation", "shared_backend", "spoken_summary"]
