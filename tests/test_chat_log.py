"""Chat logs, session expiry and saved transcripts: a `crs chat --log-dir` killed mid-conversation
keeps every word said, `crs view` reads the logs back as metrics, an idle session is dropped with
its files, and the server serves no file from outside its own cache."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crs.chat import ChatBot, ChatSession
from crs.chat_log import ChatLog, ChatLogError, read_chat_logs
from crs.cli import main


@pytest.fixture(scope="module")
def served(movie_bot: ChatBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The chat with a log folder and sessions that expire after 2 idle seconds."""
    from ui.app import launch

    logs = tmp_path_factory.mktemp("chat-logs")
    demo = launch(movie_bot, block=False, log_dir=logs, session_ttl=2)
    yield demo.local_url, logs
    demo.close()


def log_lines(logs: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(logs.glob("chat-*.jsonl")) for line in path.open()]


def last_options(chat: list[dict[str, Any]]) -> list[dict[str, str]]:
    return list(chat[-1].get("options") or [])


def test_every_event_is_in_the_log_as_it_happens(served: tuple[str, Path]) -> None:
    from gradio_client import Client

    url, logs = served
    client = Client(url, verbose=False)
    client.predict(api_name="/start")
    chat, *_ = client.predict("a funny movie from the 90s", api_name="/respond")
    session = log_lines(logs)[-1]["session"]
    mine = [line for line in log_lines(logs) if line["session"] == session]
    assert [line["event"]["kind"] for line in mine] == ["start", "text"]
    said = [m["text"] for m in mine[-1]["messages"]]
    assert "a funny movie from the 90s" in said and len(said) == 3  # greeting, words, reply
    assert mine[-1]["termination"] == "in_progress" and mine[-1]["dataset"] == "movielens"
    assert not {"ip", "address", "host", "client"} & set(mine[-1])  # nothing about the person's machine

    for _ in range(20):  # the first button on offer (yes, or a decade) until a list is shown
        if any(o["value"].startswith("accept:") for o in last_options(chat)):
            break
        chat, *_ = client.predict(last_options(chat)[0]["value"], api_name="/act")
    first = next(o for o in last_options(chat) if o["value"].startswith("accept:"))
    client.predict(first["value"], api_name="/act")
    last = [line for line in log_lines(logs) if line["session"] == session][-1]
    assert last["event"] == {"kind": "button", "value": first["value"]}
    assert last["success"] and last["termination"] == "success"
    assert last["titles"][str(last["target_item"])] == first["label"].split(". ", 1)[1]


def until_a_list(bot: ChatBot, session: ChatSession) -> ChatSession:
    for _ in range(20):
        if session.messages[-1].items:
            return session
        session = bot.handle_text(session, "don't care" if bot.choices(session) else "no")
    raise AssertionError("no list after 20 answers")


def test_thumbs_are_kept_with_the_list_they_judge(movie_bot: ChatBot) -> None:
    session = until_a_list(movie_bot, movie_bot.handle_text(movie_bot.start(log_id="tab"), "like toy story"))
    listed = len(session.messages) - 1
    session = movie_bot.give_feedback(session, listed, False)
    session = movie_bot.give_feedback(session, listed, True)  # a change of mind replaces the first
    session = movie_bot.give_feedback(session, 1, True)  # the person's own message: not judged
    session = movie_bot.give_feedback(session, 10_000, True)
    entry = movie_bot.log_entry(session, {"kind": "feedback"})
    ids = [movie_bot.catalog.items[i].id for i in session.messages[listed].items]
    assert entry["feedback"] == [{"message": listed, "liked": True, "items": ids}]
    assert entry["session"] == "tab" and entry["conversation"] == 0


def test_the_thumb_under_a_list_maps_to_that_list(movie_bot: ChatBot) -> None:
    from ui.app import message_at, render

    session = until_a_list(movie_bot, movie_bot.handle_text(movie_bot.start(), "a comedy"))
    shown = render(movie_bot, session)
    # Every message on screen, the folded "Why?" ones included, maps back to its own message.
    for index, message in enumerate(shown):
        behind = session.messages[message_at(session, index) or 0]
        if message.get("metadata"):
            assert message["content"] == behind.why
        else:
            assert behind.role == message["role"]
    assert message_at(session, len(shown)) is None
    assert session.messages[message_at(session, len(shown) - 1) or 0].items  # the list itself


def test_a_killed_chat_server_keeps_every_word(data_dir: Path, tmp_path: Path) -> None:
    """A real `crs chat --log-dir` process, SIGKILLed after a few messages: the log holds them."""
    from gradio_client import Client

    logs = tmp_path / "logs"
    server = subprocess.Popen(
        [sys.executable, "-m", "crs", "chat", "--no-retriever", "--port", "0", "--log-dir", str(logs)]
        + ["--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = ""
        deadline = time.monotonic() + 300
        while not url and time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line or server.poll() is None, "crs chat exited before serving"
            found = re.search(r"open (http://\S+) in a browser", line)
            url = found.group(1) if found else ""
        client = Client(url, verbose=False)
        client.predict(api_name="/start")
        words = ["something scary from the 80s", "no", "yes", "not that, something funnier"]
        for text in words:
            client.predict(text, api_name="/respond")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=60)
    conversations, skipped = read_chat_logs(logs)
    assert not skipped and len(conversations) == 1
    said = [m["text"] for m in conversations[0].record.extra["messages"] if m["role"] == "user"]
    assert said == words


def test_view_reads_chat_logs_as_metrics(movie_bot: ChatBot, tmp_path: Path, capsys: Any) -> None:
    log = ChatLog(tmp_path)
    taken = movie_bot.start(log_id="a")
    log.append(movie_bot.log_entry(taken, {"kind": "start"}))
    taken = until_a_list(movie_bot, movie_bot.handle_text(taken, "a funny movie from the 90s"))
    taken = movie_bot.handle_text(taken, "the second one")
    log.append(movie_bot.log_entry(taken, {"kind": "text"}))
    left = movie_bot.handle_text(movie_bot.start(log_id="b"), "something scary")
    log.append(movie_bot.log_entry(left, {"kind": "text"}))
    log.close()
    with log.path.open("a", encoding="utf-8") as handle:
        handle.write('{"session": "c", "conv')  # a line torn by a kill

    assert main(["view", str(tmp_path), "--failures", "1"]) == 0
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("| movielens"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["2", "1", "0.500"]  # two conversations, one item taken within 5 turns
    assert "sessions: 2" in out and "person: something scary" in out
    assert movie_bot.catalog.items[taken.accepted_item or 0].title in out
    assert "line 4: not JSON" in err

    assert main(["view", str(tmp_path), "--conversation", "3"]) == 2
    assert "--conversation 3: the logs hold conversations 1..2" in capsys.readouterr().err
    assert main(["view", str(tmp_path), "--why"]) == 2


def test_an_unwritable_log_folder_is_one_error_before_loading(tmp_path: Path, capsys: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["chat", "--log-dir", str(blocker / "logs"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write the chat log in") and err.endswith("(--log-dir)")
    assert len(err.splitlines()) == 1
    with pytest.raises(ChatLogError):
        ChatLog(blocker)


def live_sessions() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, ChatSession))


def test_an_idle_session_is_dropped_with_its_files(served: tuple[str, Path]) -> None:
    from gradio_client import Client

    url, logs = served
    before = live_sessions()
    clients = [Client(url, verbose=False) for _ in range(4)]
    saved = []
    for client in clients:
        client.predict(api_name="/start")
        client.predict("a comedy", api_name="/respond")
        saved.append(client.predict(api_name="/download"))
    assert live_sessions() >= before + 4
    sessions = {line["session"] for line in log_lines(logs)}
    folders = [f for f in Path(os.path.dirname(str(saved[0]))).parent.iterdir()]
    assert folders  # Gradio's cached copies exist until their time is up
    time.sleep(5)  # 2 s of idleness, and Gradio looks every second
    assert live_sessions() <= before
    downloads = [p for p in Path(_tempdir()).glob("crs-chat-downloads-*/*") if p.name in sessions]
    assert downloads == []
    # The person comes back to the tab: a new conversation, not an error.
    chat, *_ = clients[0].predict("a comedy", api_name="/respond")
    assert chat[-1]["role"] == "assistant"


def _tempdir() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_files_outside_the_cache_are_not_served(served: tuple[str, Path], tmp_path: Path) -> None:
    from gradio_client import Client

    url, _ = served
    client = Client(url, verbose=False)
    client.predict(api_name="/start")
    saved = Path(client.predict(api_name="/download"))
    secret = tmp_path / "secret.txt"
    secret.write_text("not for you")
    originals = list(Path(_tempdir()).glob("crs-chat-downloads-*/*/transcript.jsonl"))
    assert originals
    for path in [secret, Path("/etc/passwd"), *originals]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=30)
        assert refused.value.code in (403, 404)
    with urllib.request.urlopen(f"{url}gradio_api/file={saved}", timeout=30) as served_copy:
        assert json.loads(served_copy.read())["dataset"] == "movielens"
