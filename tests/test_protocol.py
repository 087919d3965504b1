"""The protocol on a tiny catalog where every action and metric can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crs.data import Dataset
from crs.env import ConversationEnv
from crs.evaluation.context import RunContext
from crs.evaluation.metrics import Outcome, compute_metrics, hdcg
from crs.evaluation.runner import RunSpec, evaluate, play_conversation
from crs.protocol import target_pairs
from crs.scoring import PopularityScorer
from crs.tracker import InvalidTurnError, update
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    InformReply,
    Recommend,
    RejectReply,
    User,
    new_state,
)
from policy.max_entropy import MaxEntropyPolicy
from simulators.rule_based import RuleBasedUser

JAZZ, EIGHTIES, NINETIES = 1, 2, 3


def _run_from_jazz(tiny: Dataset, list_size: int) -> tuple[list[object], object]:
    policy = MaxEntropyPolicy(tiny, PopularityScorer(tiny), list_size=list_size)
    env = ConversationEnv(tiny.user(0), RuleBasedUser(tiny.catalog, target=3))
    state, _ = env.reset(0, opening=InformReply((JAZZ,)))
    actions = []
    rng = np.random.default_rng(0)
    while not state.finished:
        action = policy.act(state, rng)
        actions.append(action)
        state, *_ = env.step(action)
    return actions, state


def test_max_entropy_asks_the_even_split_then_finds_the_target(tiny: Dataset) -> None:
    # After "jazz" the candidates are items 2 and 3; 80s, 90s and live each split them 1:1 and the
    # lowest index wins the tie. "No" to 80s leaves item 3 alone, which is then recommended.
    actions, state = _run_from_jazz(tiny, list_size=1)
    assert actions == [Ask(EIGHTIES), Recommend((3,))]
    assert state.termination == "success" and state.accepted_item == 3
    assert state.rejected_attributes == (EIGHTIES,)
    assert state.turn == 3  # opening, question, recommendation


def test_recommends_at_once_when_few_candidates_remain(tiny: Dataset) -> None:
    # Two candidates fit in a list of 10: item 2 (in user 1's history) outranks item 3.
    actions, state = _run_from_jazz(tiny, list_size=10)
    assert actions == [Recommend((2, 3))]
    assert state.termination == "success"


def test_hdcg_by_hand() -> None:
    assert hdcg(1, 1) == pytest.approx(1 / math.log2(3))
    assert hdcg(0, 2) == pytest.approx(1 / math.log2(3) + (1 - 1 / math.log2(3)) / math.log2(3))


def test_metrics_count_like_unicorn() -> None:
    outcomes = [Outcome(0, 1), Outcome(4, 2), Outcome(5, 1), Outcome(13, 10), Outcome(None, None)]
    metrics = compute_metrics(outcomes)
    assert metrics.sr == {5: 2 / 5, 10: 3 / 5, 15: 4 / 5}
    assert metrics.average_turns == pytest.approx((1 + 5 + 6 + 14 + 15) / 5)
    # hdcg(t, r) = 1/log2(t+3) + (1/log2(t+2) - 1/log2(t+3)) / log2(r+1), worked out by hand:
    #   (0, 1):   rank 1 gives 1/log2(2) = 1
    #   (4, 2):   0.356207 + (0.386853 - 0.356207) / 1.584963 = 0.375543
    #   (5, 1):   rank 1 gives 1/log2(7) = 0.356207
    #   (13, 10): 0.25 + (0.255958 - 0.25) / 3.459432 = 0.251722
    # sum 1.983472 over 5 conversations (the failure adds 0) = 0.396694
    assert metrics.hdcg == pytest.approx(0.396694, abs=1e-6)
    # Entry k-1 counts successes with t + 1 <= k: t = 0, 4, 5, 13 succeed at k = 1, 5, 6, 14.
    assert metrics.success_by_turn == pytest.approx((0.2,) * 4 + (0.4,) + (0.6,) * 8 + (0.8,) * 2)


def test_a_conversation_record_follows_the_transcript_format(tiny: Dataset) -> None:
    spec = RunSpec(dataset="tiny", split="valid")
    policy = MaxEntropyPolicy(tiny, PopularityScorer(tiny), list_size=1)
    record = play_conversation(RunContext(spec, tiny, policy, target_pairs(tiny, "valid")), 0).to_json()
    turns = record["turns"]
    assert turns[0]["turn"] == 1 and turns[0]["actor"] == "user" and turns[0]["act"] == "inform"
    assert turns[0]["attribute"] in (JAZZ, NINETIES, 4)
    assert [turn["t"] for turn in turns[1:]] == list(range(len(turns) - 1))
    assert turns[-1]["act"] == "recommend" and turns[-1]["accepted"] is True and turns[-1]["items"] == [3]
    assert record["success"] and record["termination"] == "success" and record["target_rank"] == 1
    assert record["success_t"] == len(turns) - 2
    for key in (
        "conversation_id",
        "dataset",
        "split",
        "user_id",
        "target_item",
        "policy",
        "simulator",
        "seed",
    ):
        assert key in record


def test_turn_limit_ends_the_conversation(tiny: Dataset) -> None:
    # With two turns the only system action is the last one, which must be a recommendation.
    # Seed 1 opens with "jazz": candidates {2, 3}; popularity (user 1's history) ranks item 2 first,
    # the target 3 is not in the list of one, and the rejection at turn 2 is the limit.
    spec = RunSpec(dataset="tiny", policy="max_entropy", scorer="popularity", max_turns=2, seed=1)
    record = evaluate(spec, tiny, MaxEntropyPolicy(tiny, PopularityScorer(tiny), list_size=1)).records[0]
    assert [(t.act, t.attribute, t.items) for t in record.turns] == [
        ("inform", JAZZ, None),
        ("recommend", None, (2,)),
    ]
    assert not record.success and record.termination == "max_turns"


def test_tracker_rejects_replies_that_do_not_fit() -> None:
    state = update(new_state(User(0)), None, InformReply((1,)))
    with pytest.raises(InvalidTurnError):
        update(state, Recommend((1, 2)), AnswerReply(Answer.YES))
    with pytest.raises(InvalidTurnError):
        update(state, Recommend((1, 2)), AcceptReply(7))
    with pytest.raises(InvalidTurnError):
        update(state, Ask(3), RejectReply())
    done = update(state, Recommend((1, 2)), AcceptReply(2))
    with pytest.raises(InvalidTurnError):
        update(done, Ask(3), AnswerReply(Answer.NO))


def test_tracker_never_mutates_the_previous_state() -> None:
    first = update(new_state(User(0)), None, InformReply((1,)))
    second = update(first, Ask(2), AnswerReply(Answer.NO))
    third = update(second, Recommend((4, 5)), RejectReply())
    assert first.rejected_attributes == () and first.turn == 1
    assert second.rejected_attributes == (2,) and second.rejected_items == ()
    assert third.rejected_items == (4, 5) and third.turn == 3
    assert update(third, Ask(6), AnswerReply(Answer.DONT_KNOW)).unknown_attributes == (6,)


def test_a_wish_in_reply_to_a_question_passes_over_it() -> None:
    """Asked about 2, the person says what they want instead: 2 is not asked again at once (it
    counts as "don't care"), and a later word about it still counts."""
    state = update(new_state(User(0)), None, InformReply((1,)))
    skipped = update(state, Ask(2), InformReply((3,), unwanted=(4,)))
    assert skipped.unknown_attributes == (2,) and 2 in skipped.asked_attributes
    assert skipped.accepted_attributes == (1, 3) and skipped.rejected_attributes == (4,)
    answered = update(state, Ask(2), InformReply((2,)))
    assert answered.unknown_attributes == () and answered.accepted_attributes == (1, 2)
    changed_mind = update(skipped, Ask(5), InformReply((2,)))
    assert changed_mind.accepted_attributes == (1, 3, 2) and 2 not in changed_mind.unknown_attributes


def test_a_broken_policy_ends_its_conversations_in_error_and_benchmarks_refuse_them(tiny: Dataset) -> None:
    class Broken:
        name = "broken"

        def act(self, state: object, rng: object) -> Ask:
            raise TypeError("decide() takes 2 positional arguments but 3 were given")

    result = evaluate(RunSpec(dataset="tiny", policy="max_entropy", scorer="popularity"), tiny, Broken())
    assert [r.termination for r in result.records] == ["error"] and not result.records[0].success
    assert "takes 2 positional arguments" in result.records[0].extra["error"]
    with pytest.raises(RuntimeError, match="1 of 1 conversations ended in an error"):
        result.raise_for_errors()
