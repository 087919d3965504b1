"""The chat under many people at once (benchmarks/chat_soak.py, smaller): every reply a session
gets while others talk is the reply it gets alone, and a session Gradio drops when idle leaves
nothing of itself behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import chat_soak
finally:
    sys.path.pop(0)


def check(result: Any) -> None:
    mismatches = [
        f"seed {m.seed} #{m.index} {m.step.api} {m.step.value!r}:\n"
        f"  concurrent {m.concurrent}\n  alone {m.alone}"
        for m in result.mismatches
    ]
    assert not mismatches, "replies differ between concurrent and alone:\n" + "\n".join(mismatches[:5])
    errors = [
        f"seed {run.seed} #{index} {step.api} {step.value!r}: {reply.error[:200]}"
        for run in result.runs
        for index, (step, reply) in enumerate(zip(run.steps, run.replies, strict=True))
        if reply.error
    ]
    assert not errors, "the server raised:\n" + "\n".join(errors[:5])


def test_six_concurrent_sessions_reply_as_they_do_alone(app_url: str, movie_bot: Any) -> None:
    started = time.perf_counter()
    result = chat_soak.soak(movie_bot, app_url, sessions=6, messages=90, seed=1)
    steps = [step for run in result.runs for step in run.steps]
    assert len(steps) == 90 and all(len(run.replies) == len(run.steps) for run in result.runs)
    # The scripts did what a soak is for: clicks on offered, stale and never-offered buttons.
    kinds = {step.kind for step in steps}
    assert {"wish", "answer", "offered", "never"} <= kinds, kinds
    check(result)
    assert time.perf_counter() - started < 120


@pytest.mark.slow
def test_fifty_concurrent_sessions_two_thousand_messages(app_url: str, movie_bot: Any) -> None:
    result = chat_soak.soak(movie_bot, app_url, sessions=50, messages=2000, seed=0)
    assert sum(len(run.steps) for run in result.runs) == 2000
    check(result)


def test_a_replay_that_differs_is_reported(app_url: str, movie_bot: Any) -> None:
    """The comparison sees a changed reply: the same script, its last wish changed, differs."""
    tabs: list[Any] = []
    try:
        [run] = chat_soak.run_concurrently(
            app_url, chat_soak.vocabulary(movie_bot), [7], [6], True, lambda: None, tabs
        )
        steps = [*run.steps[:-1], chat_soak.Step("/respond", "something with aliens from the 1980s")]
        alone = chat_soak.replay(app_url, steps, lambda: None, tabs)
    finally:
        chat_soak.close(tabs)
    if run.steps[-1] == steps[-1]:
        pytest.skip("the script's last step was that very wish")
    mismatches = chat_soak.compare([run], [alone])
    assert [m.index for m in mismatches] == [5]


def test_an_idle_session_is_dropped_with_everything_it_held(movie_bot: Any) -> None:
    baseline = chat_soak.live_sessions()
    demo = chat_soak.serve(movie_bot, session_ttl=2)
    tabs: list[Any] = []
    try:
        url = str(demo.local_url)
        words = chat_soak.vocabulary(movie_bot)
        runs = chat_soak.run_concurrently(url, words, [11, 12, 13, 14], [8] * 4, True, lambda: None, tabs)
        assert all(not reply.error for run in runs for reply in run.replies)
        assert chat_soak.gradio_sessions(demo) == 4  # each open tab is known to the server
        chat_soak.wait_for_expiry(2, baseline, timeout=15)
        assert chat_soak.live_sessions() <= baseline
        time.sleep(3)  # Gradio's own records of the sessions go two seconds after their state
        assert chat_soak.gradio_sessions(demo) == 0
        # A dropped tab that talks again starts over instead of failing.
        chat, _, _, _ = tabs[0].predict("something funny", api_name="/respond")
        assert chat[-1]["role"] == "assistant"
        assert chat_soak.message_text(chat[0]).startswith("Hi!")
    finally:
        chat_soak.close(tabs)
        demo.close()


def test_a_closed_tab_expires_like_an_idle_one(movie_bot: Any) -> None:
    """Gradio keeps a closed tab's state an hour whatever its time to live: here a closed tab is
    dropped, with Gradio's own record of it, once it has been idle for the session's time."""
    demo = chat_soak.serve(movie_bot, session_ttl=6)
    tabs: list[Any] = []
    try:
        words = chat_soak.vocabulary(movie_bot)
        chat_soak.run_concurrently(str(demo.local_url), words, [21, 22], [6, 6], True, lambda: None, tabs)
        assert held_sessions(demo) == 2
        chat_soak.close(tabs)  # the tabs are closed: Gradio sees their heartbeat end
        deadline = time.monotonic() + 60
        while chat_soak.gradio_sessions(demo) and time.monotonic() < deadline:
            time.sleep(1)
        assert held_sessions(demo) == 0 and chat_soak.gradio_sessions(demo) == 0
    finally:
        chat_soak.close(tabs)
        demo.close()


def held_sessions(demo: Any) -> int:
    """Sessions of this server whose conversation is still held."""
    from crs.chat import ChatSession

    return sum(
        any(isinstance(value, ChatSession) for value in record.state_data.values())
        for record in list(demo.state_holder.session_data.values())
    )
