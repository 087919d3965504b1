"""Soak of the browser chat: many people at once, then each of them alone, through the real server.

The chat server (`ui.app.launch`, in this process) serves `--sessions` concurrent gradio_client
sessions, one thread and one Client each. Each session talks from its own seed: free-text wishes
(realistic phrases around catalog genres, decades, tags and titles), answers, clicks on the buttons
its last reply actually offered (and the film cards' "More like this" / "Not this one"), buttons
offered earlier but no longer (stale), values never offered (a random kind with a negative, huge or
non-numeric argument), removed preferences and restarts; `--messages` requests in all. Every reply
is kept (the chat with its folded "Why?" notes and buttons, the side panel, the preferences list).

Then every session's exact script is sent again, alone, one session after another, on the same
server: a reply that differs from the concurrent run's is cross-talk (or nondeterminism) and is
reported. Reply latency is compared (concurrent vs alone), and the server's memory (this process:
server and clients share it) is read before, right after, and once Gradio has dropped the idle
sessions (`--session-ttl`; its expiry loop runs every second).

    python benchmarks/chat_soak.py                       # 50 sessions, 2,000 messages, retriever on
    python benchmarks/chat_soak.py --sessions 8 --messages 150 --no-retriever   # a quick run

Writes benchmarks/results/chat_soak.json.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a script's own process: before gradio

# "answer" / "choice" / ... are the button kinds `ui.app.click` knows; "zzz" and "" it does not.
BUTTON_KINDS = ("answer", "choice", "title", "accept", "reject", "more", "drop", "zzz", "")
# Arguments no button carries: negative, past the catalog, not a number, a digit `int` refuses.
ODD_ARGUMENTS = ("-1", "-7", "999999", "1000000000000", "abc", "", "1.5", " 3", "٣", "yes", "none")

WISHES = (
    "something {genre}",
    "I'd like a {genre} movie",
    "a {genre} film from the {decade}",
    "something {tag} please",
    "anything {tag}, but no {genre2}",
    "no {genre}",
    "not {genre} please",
    "like {title}",
    "something like {title} but more {tag}",
    "I loved {title}",
    "I hated {title}",
    "a {tag} {genre} movie",
    "{genre} or {genre2}, from the {decade}",
    "my kids want something {genre}",
    "{title}",
    "what about {title}?",
    "the {decade} please",
)
ANSWERS = (
    "yes",
    "no",
    "don't care",
    "sure",
    "nope",
    "not really",
    "maybe",
    "the first one",
    "number 3",
    "the last one",
    "none of these",
    "more like the second one",
    "help",
    "start over",
    "hmm",
    "?",
    "with Tom Hanks",
    "no Tarantino",
)


@dataclass(frozen=True)
class Step:
    """One request: an api name of the chat and its one argument (None for none)."""

    api: str
    value: Any = None
    kind: str = ""  # what the script meant: wish, answer, offered, card, stale, never, remove, restart


@dataclass
class Reply:
    digest: str  # of the whole reply, canonical JSON
    summary: str  # the last assistant words, buttons and "Turns so far", to read a mismatch
    seconds: float
    error: str = ""  # the server's error (gradio_client's AppError), "" for a reply


@dataclass
class SessionRun:
    seed: int
    steps: list[Step] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def offered_values(chat: Sequence[dict[str, Any]], cards: bool) -> list[str]:
    """The buttons of the last message, and the film cards' buttons when a list is on screen."""
    options = (chat[-1].get("options") or []) if chat else []
    values = [str(option["value"]) for option in options]
    if cards:
        items = [value.split(":", 1)[1] for value in values if value.startswith("accept:")]
        values += [f"{kind}:{item}" for item in items for kind in ("more", "drop")]
    return values


def summarize(outputs: Sequence[Any]) -> str:
    chat, panel = outputs[0], str(outputs[1])
    last = message_text(chat[-1])[:160] if chat else ""
    turns = next((line for line in panel.split("\n") if "Turns so far" in line), "")
    return f"{last!r} {offered_values(chat, cards=False)} {turns}"


class Talker:
    """One person's side: a seeded generator of wishes and clicks that reads the replies."""

    def __init__(self, vocabulary: dict[str, list[str]], seed: int, cards: bool) -> None:
        self.words = vocabulary
        self.rng = random.Random(seed)
        self.cards = cards
        self.seen: set[str] = set()  # every button value ever offered in this conversation

    def wish(self) -> str:
        rng, words = self.rng, self.words
        template = rng.choice(WISHES)
        return template.format(
            genre=rng.choice(words["genre"]).lower(),
            genre2=rng.choice(words["genre"]).lower(),
            decade=rng.choice(words["decade"]),
            tag=rng.choice(words["tag"]),
            title=rng.choice(words["title"]),
        )

    def never_offered(self) -> str:
        kind = self.rng.choice(BUTTON_KINDS)
        argument = self.rng.choice((*ODD_ARGUMENTS, str(self.rng.randrange(-(10**6), 10**12))))
        return f"{kind}:{argument}" if self.rng.random() < 0.9 else kind

    def next_step(self, chat: Sequence[dict[str, Any]], constraints: Sequence[Any]) -> Step:
        offered = offered_values(chat, self.cards)
        self.seen.update(offered)
        stale = sorted(self.seen - set(offered))
        roll = self.rng.random()
        if roll < 0.40 and offered:
            value = self.rng.choice(offered)
            return Step("/act", value, "card" if value.split(":")[0] in ("more", "drop") else "offered")
        if roll < 0.55:
            return Step("/respond", self.rng.choice(ANSWERS), "answer")
        if roll < 0.80:
            return Step("/respond", self.wish(), "wish")
        if roll < 0.87 and stale:
            return Step("/act", self.rng.choice(stale), "stale")
        if roll < 0.93:
            return Step("/act", self.never_offered(), "never")
        if roll < 0.97 and constraints:
            return Step("/remove", self.rng.choice(list(constraints)), "remove")
        return Step("/restart", None, "restart")


def vocabulary(bot: Any, titles: int = 300) -> dict[str, list[str]]:
    """Genres, decades, tags and the most popular titles of the catalog, as a person names them."""
    import numpy as np

    attributes = bot.catalog.attributes
    popular = np.argsort(-np.asarray(bot.dataset.popularity))[:titles]
    words = {group: [a.name for a in attributes if a.group == group] for group in ("genre", "decade", "tag")}
    words["title"] = [bot.catalog.items[int(i)].title for i in popular]
    names = [a.name for a in attributes]
    for group, values in words.items():  # a catalog without groups: any attribute will do
        if not values:
            words[group] = names
    return words


def new_client(url: str) -> Any:
    from gradio_client import Client

    # ssl_verify=False: the server is plain http on this machine; with the default, httpx builds a
    # certificate store for every request (~50 ms of CPU), more than the chat's own reply time.
    return Client(url, verbose=False, ssl_verify=False)


def call(client: Any, step: Step) -> tuple[tuple[Any, ...], float, str]:
    """(outputs, seconds, error) of one request; the error is the server's, as the client saw it."""
    from gradio_client.exceptions import AppError

    started = time.perf_counter()
    try:
        if step.value is None and step.api in ("/start", "/restart"):
            result = client.predict(api_name=step.api)
        else:
            result = client.predict(step.value, api_name=step.api)
    except AppError as error:
        return (), time.perf_counter() - started, f"AppError: {error}"
    seconds = time.perf_counter() - started
    return tuple(result) if isinstance(result, (list, tuple)) else (result,), seconds, ""


def record(outputs: tuple[Any, ...], seconds: float, error: str) -> Reply:
    # /respond also clears the textbox: its "" is part of the reply like the rest.
    canonical = json.dumps([list(outputs), error], sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return Reply(digest, summarize(outputs) if outputs else error[:200], seconds, error)


def converse(
    url: str,
    words: dict[str, list[str]],
    seed: int,
    messages: int,
    cards: bool,
    tick: Callable[[], None],
    tabs: list[Any],
) -> SessionRun:
    """A scripted conversation of `messages` requests (the opening /start included), recorded.
    The client is left open in `tabs`: a closed one is a closed browser tab to Gradio, whose state
    it keeps an hour whatever the session's time to live."""
    run = SessionRun(seed)
    talker = Talker(words, seed, cards)
    client = new_client(url)
    tabs.append(client)
    step = Step("/start", None, "start")
    chat: Sequence[dict[str, Any]] = []
    choices: Sequence[Any] = []
    for _ in range(messages):
        outputs, seconds, error = call(client, step)
        run.steps.append(step)
        run.replies.append(record(outputs, seconds, error))
        tick()
        if outputs:
            chat = outputs[0]
            dropdown = outputs[2] if len(outputs) > 2 else {}
            choices = [value for _, value in (dropdown or {}).get("choices") or []]
        step = talker.next_step(chat, choices)
    return run


def replay(url: str, steps: Sequence[Step], tick: Callable[[], None], tabs: list[Any]) -> list[Reply]:
    client = new_client(url)
    tabs.append(client)
    replies = []
    for step in steps:
        replies.append(record(*call(client, step)))
        tick()
    return replies


def close(tabs: list[Any]) -> None:
    for client in tabs:
        client.close()
    tabs.clear()


def run_concurrently(
    url: str,
    words: dict[str, list[str]],
    seeds: Sequence[int],
    per_session: Sequence[int],
    cards: bool,
    tick: Callable[[], None],
    tabs: list[Any],
) -> list[SessionRun]:
    runs: dict[int, SessionRun] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(len(seeds))  # all sessions talk at once, not as their threads start

    def one(index: int) -> None:
        try:
            start.wait(timeout=300)
            runs[index] = converse(url, words, seeds[index], per_session[index], cards, tick, tabs)
        except BaseException as failure:  # kept: a thread's failure must fail the run
            failures.append(failure)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(seeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} sessions failed") from failures[0]
    return [runs[i] for i in range(len(seeds))]


@dataclass
class Mismatch:
    seed: int
    index: int
    step: Step
    concurrent: str
    alone: str


def compare(runs: Sequence[SessionRun], alone: Sequence[Sequence[Reply]]) -> list[Mismatch]:
    found = []
    for run, replies in zip(runs, alone, strict=True):
        for index, (step, first, second) in enumerate(zip(run.steps, run.replies, replies, strict=True)):
            if first.digest != second.digest:
                found.append(Mismatch(run.seed, index, step, first.summary, second.summary))
    return found


def split_messages(messages: int, sessions: int) -> list[int]:
    base, extra = divmod(messages, sessions)
    return [base + (i < extra) for i in range(sessions)]


def rss_mb() -> float:
    """This process's resident memory now (not its peak), from /proc."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak: the best there is


def live_sessions() -> int:
    """ChatSession objects alive in this process (held by Gradio's per-tab state, or anyone)."""
    import warnings

    from crs.chat import ChatSession

    gc.collect()
    with warnings.catch_warnings():  # isinstance on some of torch's deprecated objects warns
        warnings.simplefilter("ignore")
        return sum(1 for obj in gc.get_objects() if isinstance(obj, ChatSession))


def memory(label: str) -> dict[str, Any]:
    gc.collect()
    return {
        "when": label,
        "rss_mb": rss_mb(),
        "objects": len(gc.get_objects()),
        "chat_sessions": live_sessions(),
    }


def latency(replies: Sequence[Reply]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray([r.seconds for r in replies]) * 1000.0
    if not len(ms):
        return {"p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def serve(bot: Any, session_ttl: float | None) -> Any:
    """The chat server in this process (sessions idle `session_ttl` seconds are dropped)."""
    from ui.app import launch

    return launch(bot, host="127.0.0.1", block=False, session_ttl=session_ttl)


def gradio_sessions(demo: Any) -> int:
    """Sessions Gradio still keeps a record of (its per-tab copy of the page's configuration)."""
    holder = getattr(demo, "state_holder", None)
    return len(holder.session_data) if holder is not None else 0


@dataclass
class Soak:
    runs: list[SessionRun]
    alone: list[list[Reply]]
    mismatches: list[Mismatch]
    concurrent_seconds: float
    alone_seconds: float
    memory: list[dict[str, Any]]


def soak(
    bot: Any,
    url: str,
    sessions: int,
    messages: int,
    seed: int = 0,
    tick: Callable[[], None] = lambda: None,
    memory_at: Callable[[str], dict[str, Any]] = memory,
    tabs: list[Any] | None = None,
) -> Soak:
    """Run the sessions concurrently, then each one's script alone; compare the replies. The
    clients are left open in `tabs` (closed here when None)."""
    own = tabs is None
    tabs = [] if tabs is None else tabs
    words = vocabulary(bot)
    cards = getattr(bot, "details", None) is not None
    seeds = [seed * 1_000_003 + i for i in range(sessions)]
    readings = [memory_at("before the sessions")]
    started = time.perf_counter()
    runs = run_concurrently(url, words, seeds, split_messages(messages, sessions), cards, tick, tabs)
    concurrent_seconds = time.perf_counter() - started
    readings.append(memory_at("right after the concurrent sessions"))
    started = time.perf_counter()
    alone = [replay(url, run.steps, tick, tabs) for run in runs]
    alone_seconds = time.perf_counter() - started
    readings.append(memory_at("after the replays"))
    if own:
        close(tabs)
    return Soak(runs, alone, compare(runs, alone), concurrent_seconds, alone_seconds, readings)


def wait_for_expiry(ttl: float, baseline: int, timeout: float = 60.0) -> float:
    """Seconds until the live ChatSessions are back to `baseline` (Gradio drops an idle state
    `ttl` seconds after its last use, checking every second); waits at most `timeout` past `ttl`."""
    started = time.perf_counter()
    time.sleep(ttl)
    while live_sessions() > baseline and time.perf_counter() - started < ttl + timeout:
        time.sleep(0.5)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions")
    parser.add_argument("--messages", type=int, default=2000, help="requests in all, over the sessions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--session-ttl",
        type=float,
        default=20.0,
        # Longer than a reply under load: a session dropped while it waits in the queue starts over.
        help="seconds before an idle session is dropped",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--no-retriever", action="store_true", help="without the embedding retriever")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.messages < args.sessions:
        parser.error("--messages must be at least --sessions (each session opens with /start)")
    args.out.mkdir(parents=True, exist_ok=True)

    from crs.chat import build_bot
    from crs.cli.common import progress_bars
    from crs.progress import report
    from crs.settings import load_settings

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()

    served: list[Any] = []

    def reading(label: str) -> dict[str, Any]:
        found = memory(label)
        found["gradio_sessions"] = gradio_sessions(served[0]) if served else 0
        if args.tracemalloc:
            import tracemalloc

            found["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
        return found

    settings = load_settings(overrides={"chat.dataset": args.dataset, "data.dir": args.data_dir})
    started = time.perf_counter()
    with progress_bars(args.quiet) as progress:
        bot = build_bot(settings, use_retriever=not args.no_retriever, progress=progress)
    startup = time.perf_counter() - started
    demo = serve(bot, args.session_ttl)
    served.append(demo)
    tabs: list[Any] = []
    try:
        total = 2 * args.messages
        done = [0]
        lock = threading.Lock()
        with progress_bars(args.quiet) as progress:

            def tick() -> None:
                with lock:
                    done[0] += 1
                    report(progress, "messages (concurrent, then alone)", done[0], total, "msg")

            result = soak(
                bot, str(demo.local_url), args.sessions, args.messages, args.seed, tick, reading, tabs
            )
        expiry_seconds = wait_for_expiry(args.session_ttl, baseline=0)
        time.sleep(3)  # Gradio's own records go two seconds after the state
        result.memory.append(reading(f"after expiry ({args.session_ttl:g} s idle, tabs open)"))
        close(tabs)
        result.memory.append(reading("after closing the clients"))
    finally:
        close(tabs)
        demo.close()

    concurrent = [reply for run in result.runs for reply in run.replies]
    alone = [reply for replies in result.alone for reply in replies]
    errors = sorted(
        {
            (r.error, s.value)
            for run in result.runs
            for s, r in zip(run.steps, run.replies, strict=True)
            if r.error
        },
        key=str,
    )
    kinds: dict[str, int] = {}
    for run in result.runs:
        for step in run.steps:
            kinds[step.kind] = kinds.get(step.kind, 0) + 1
    rows = {"concurrent": latency(concurrent), "alone": latency(alone)}
    ratio = {
        key: rows["concurrent"][key] / rows["alone"][key] if rows["alone"][key] else None
        for key in ("p50_ms", "p95_ms", "max_ms")
    }
    print(
        f"{args.dataset}: {args.sessions} sessions, {len(concurrent)} messages, retriever "
        f"{'off' if args.no_retriever else 'on'}, start-up {startup:.1f} s, {os.cpu_count()} CPUs"
    )
    print(f"messages by kind: {json.dumps(kinds, sort_keys=True)}")
    print("| run | messages | wall s | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|")
    for name, seconds, replies in (
        ("concurrent", result.concurrent_seconds, concurrent),
        ("alone", result.alone_seconds, alone),
    ):
        row = rows[name]
        print(
            f"| {name} | {len(replies)} | {seconds:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['max_ms']:.1f} |"
        )
    print(
        "| concurrent / alone | | | "
        + " | ".join(f"{ratio[k]:.2f}" if ratio[k] else "" for k in ("p50_ms", "p95_ms", "max_ms"))
        + " |"
    )
    print(
        "| memory | RSS MB | Python objects | live ChatSessions | Gradio session records |\n"
        "|---|---|---|---|---|"
    )
    for row in result.memory:
        print(
            f"| {row['when']} | {row['rss_mb']:.0f} | {row['objects']:,} | {row['chat_sessions']:,} | "
            f"{row.get('gradio_sessions', 0):,} |"
        )
    print(f"replies that differ alone: {len(result.mismatches)}")
    for mismatch in result.mismatches[:10]:
        print(
            f"  seed {mismatch.seed} #{mismatch.index} {mismatch.step.api} {mismatch.step.value!r}:\n"
            f"    concurrent {mismatch.concurrent}\n    alone      {mismatch.alone}"
        )
    print(f"server errors (in both runs alike unless listed above): {sum(1 for r in concurrent if r.error)}")
    for error, value in errors[:10]:
        print(f"  {value!r}: {error[:160]}")
    report_json = {
        "dataset": args.dataset,
        "retriever": not args.no_retriever,
        "sessions": args.sessions,
        "messages": len(concurrent),
        "messages_by_kind": kinds,
        "seed": args.seed,
        "startup_seconds": startup,
        "latency": {
            "concurrent": {**rows["concurrent"], "wall_seconds": result.concurrent_seconds},
            "alone": {**rows["alone"], "wall_seconds": result.alone_seconds},
            "concurrent_over_alone": ratio,
        },
        "mismatches": [
            {
                "seed": m.seed,
                "index": m.index,
                "api": m.step.api,
                "value": m.step.value,
                "concurrent": m.concurrent,
                "alone": m.alone,
            }
            for m in result.mismatches
        ],
        "server_errors": [{"value": value, "error": error} for error, value in errors],
        "session_ttl_seconds": args.session_ttl,
        "expiry_wait_seconds": expiry_seconds,
        "memory": result.memory,
        "cpus": os.cpu_count(),
    }
    path = args.out / "chat_soak.json"
    path.write_text(json.dumps(report_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return 1 if result.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
