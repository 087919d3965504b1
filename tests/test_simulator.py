"""The rule-based simulated user: answers from the target's attributes and nothing else."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crs.data import Dataset
from crs.tracker import update
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    User,
    new_state,
)
from simulators.rule_based import RuleBasedUser, SimulatorOptions
from simulators.wrappers import simulated_user

ITEMS = st.integers(min_value=0, max_value=7431)


@settings(max_examples=200, deadline=None)
@given(target=ITEMS, attribute=st.integers(min_value=0, max_value=8437), seed=st.integers(0, 2**32 - 1))
def test_yes_exactly_when_the_target_has_the_attribute(
    lastfm_star: Dataset, target: int, attribute: int, seed: int
) -> None:
    user = RuleBasedUser(lastfm_star.catalog, target)
    state = new_state(User(0))
    reply = user.respond(state, Ask(attribute), np.random.default_rng(seed))
    expected = Answer.YES if attribute in lastfm_star.catalog.items[target].attributes else Answer.NO
    assert reply == AnswerReply(expected)


@settings(max_examples=200, deadline=None)
@given(
    target=ITEMS, shown=st.lists(ITEMS, min_size=1, max_size=10, unique=True), seed=st.integers(0, 2**32 - 1)
)
def test_a_list_is_accepted_only_with_the_target_and_rejections_say_nothing(
    lastfm_star: Dataset, target: int, shown: list[int], seed: int
) -> None:
    user = RuleBasedUser(lastfm_star.catalog, target)
    reply = user.respond(new_state(User(0)), Recommend(tuple(shown)), np.random.default_rng(seed))
    if target in shown:
        assert reply == AcceptReply(target)
    else:
        assert reply == RejectReply()


@settings(max_examples=100, deadline=None)
@given(target=ITEMS, seed=st.integers(0, 2**32 - 1))
def test_the_opening_volunteers_one_attribute_of_the_target(
    lastfm_star: Dataset, target: int, seed: int
) -> None:
    reply = RuleBasedUser(lastfm_star.catalog, target).opening(np.random.default_rng(seed))
    assert isinstance(reply, InformReply) and reply.unwanted == ()
    assert len(reply.attributes) == 1 and reply.attributes[0] in lastfm_star.catalog.items[target].attributes


def test_replies_only_answer_what_was_asked(lastfm_star: Dataset) -> None:
    # A rejection carries no field at all: no hint about the target can leak through it.
    assert dataclasses.fields(RejectReply) == ()
    # A reply depends on the action alone, never on what the conversation already holds: a
    # conversation that liked attribute 1, said yes to 2 and rejected a list answers exactly as a
    # fresh one. Target 5 has attributes 69, 75, 77, 80 and 148 below 300, so yes and no both occur.
    user = RuleBasedUser(lastfm_star.catalog, 5)
    fresh = update(new_state(User(0)), None, InformReply((1,)))
    busy = update(update(fresh, Ask(2), AnswerReply(Answer.YES)), Recommend((6, 7)), RejectReply())
    rng = np.random.default_rng(0)
    actions = [Ask(a) for a in range(300)] + [Recommend((6, 7)), Recommend((7, 5)), Recommend((1, 2))]
    replies = [user.respond(busy, action, rng) for action in actions]
    assert replies == [user.respond(fresh, action, rng) for action in actions]
    assert sum(r == AnswerReply(Answer.YES) for r in replies) == 5


def test_answer_noise_flips_about_the_requested_share(lastfm_star: Dataset) -> None:
    target = 10
    user = simulated_user(lastfm_star.catalog, target, SimulatorOptions(answer_noise=0.1))
    truth = set(lastfm_star.catalog.items[target].attributes)
    rng = np.random.default_rng(1)
    flips = 0
    trials = 5000
    for i in range(trials):
        attribute = i % 200
        reply = user.respond(new_state(User(0)), Ask(attribute), rng)
        flips += (reply.answer == Answer.YES) != (attribute in truth)  # type: ignore[union-attr]
    assert 0.08 < flips / trials < 0.12


def test_dont_know_share_and_patience(lastfm_star: Dataset) -> None:
    user = simulated_user(lastfm_star.catalog, 10, SimulatorOptions(dont_know=0.2))
    rng = np.random.default_rng(2)
    answers = [user.respond(new_state(User(0)), Ask(a % 100), rng) for a in range(5000)]
    share = sum(r == AnswerReply(Answer.DONT_KNOW) for r in answers) / len(answers)
    assert 0.18 < share < 0.22

    # Patience 3: the user quits once 3 turns (opening included) have passed, and not before.
    patient = simulated_user(lastfm_star.catalog, 10, SimulatorOptions(patience=3))
    state = update(new_state(User(0)), None, InformReply((1,)))
    state = update(state, Ask(2), patient.respond(state, Ask(2), rng))
    reply = patient.respond(state, Ask(3), rng)
    assert reply == AnswerReply(Answer.NO)  # turn 2 < patience 3: still answering (10 lacks 3)
    state = update(state, Ask(3), reply)
    assert state.turn == 3 and not state.finished
    assert patient.respond(state, Ask(4), rng) == QuitReply()


@pytest.mark.parametrize(
    "options", [dict(answer_noise=1.5), dict(dont_know=-0.1), dict(patience=0), dict(list_size=0)]
)
def test_bad_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimulatorOptions(**options)  # type: ignore[arg-type]
