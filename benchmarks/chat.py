"""Reply time of the chat: start-up, the first reply after it, then the time per turn of scripted
conversations, with the embedding retriever on (as `crs chat` runs) and off, in the same run.

A scripted person wants one random movie (seeded): they open with two of its attributes in words
("something comedy and 1990s"), answer each question truthfully in words ("yes" / "no", or the
decade's name to "Which decade?"), and say
"the third one" when the movie is listed, "none of these" otherwise. Measured in-process
(`ChatBot.handle_text`, what the server does per message) without and with the retriever, and
through the real Gradio server with gradio_client (HTTP and queueing included, retriever on).
The retriever's catalog embeddings are built once and cached (minutes on a first run).

    python benchmarks/chat.py                  # ~2 minutes; movielens
    python benchmarks/chat.py --dataset lastfm_star --conversations 50

Writes benchmarks/results/chat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a script's own process: before gradio

from crs.chat import ChatBot, ChatSession  # noqa: E402
from crs.settings import load_settings  # noqa: E402
from crs.types import Ask, Recommend  # noqa: E402
from ui.app import build_bot, build_demo  # noqa: E402


def scripted_messages(bot: ChatBot, target: int, session: ChatSession) -> str:
    attributes = bot.catalog.items[target].attributes
    pending = session.pending
    values = bot.choices(session)
    if values:  # "Which decade?": a person names theirs (a "yes" would only be asked which one)
        return next((name for value, name in values if value in attributes), "don't care")
    if isinstance(pending, Ask):
        return "yes" if pending.attribute in attributes else "no"
    if isinstance(pending, Recommend):
        if target in pending.items:
            return [
                "the first one",
                "the second one",
                "the third one",
                "number 4",
                "#5",
                "the sixth one",
                "the seventh",
                "the eighth one",
                "number 9",
                "the last one",
            ][pending.items.index(target)]
        return "none of these"
    return "hm"


def opening(bot: ChatBot, target: int, rng: random.Random) -> str:
    names = [bot.catalog.attributes[a].name.lower() for a in bot.catalog.items[target].attributes]
    chosen = rng.sample(names, min(2, len(names)))
    return "something " + " and ".join(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--turns", type=int, default=15, help="messages per conversation at most")
    parser.add_argument("--data-dir")
    parser.add_argument("--no-retriever", action="store_true", help="measure without the retriever only")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    settings = load_settings(overrides={"chat.dataset": args.dataset, "data.dir": args.data_dir})
    retriever_modes = (False,) if args.no_retriever else (False, True)
    bots: dict[bool, ChatBot] = {}
    startup: dict[bool, float] = {}
    first_reply: dict[bool, float] = {}
    for with_retriever in retriever_modes:
        started = time.perf_counter()
        bots[with_retriever] = build_bot(settings, use_retriever=with_retriever)
        startup[with_retriever] = time.perf_counter() - started
        # What the first visitor waits for: every model is loaded at start-up, none at this message.
        started = time.perf_counter()
        bots[with_retriever].handle_text(bots[with_retriever].start(), "something funny from the 90s")
        first_reply[with_retriever] = time.perf_counter() - started
    bot = bots[retriever_modes[-1]]
    rng = random.Random(0)
    popular = np.argsort(-bot.dataset.popularity)[:2000]
    targets = [int(popular[rng.randrange(len(popular))]) for _ in range(args.conversations)]
    openings = [opening(bot, target, rng) for target in targets]

    in_process: dict[bool, list[float]] = {mode: [] for mode in retriever_modes}
    found: dict[bool, int] = dict.fromkeys(retriever_modes, 0)
    for mode in retriever_modes:
        for target, first in zip(targets, openings, strict=True):
            session = bots[mode].start()
            text = first
            for _ in range(args.turns):
                t0 = time.perf_counter()
                session = bots[mode].handle_text(session, text)
                in_process[mode].append(time.perf_counter() - t0)
                if session.finished:
                    found[mode] += session.accepted_item == target
                    break
                text = scripted_messages(bots[mode], target, session)

    from gradio_client import Client

    demo = build_demo(bot)
    t0 = time.perf_counter()
    demo.launch(server_name="127.0.0.1", share=False, prevent_thread_lock=True, quiet=True)
    server_start = time.perf_counter() - t0
    over_http: list[float] = []
    try:
        for target in targets[: max(1, args.conversations // 2)]:
            client = Client(str(demo.local_url), verbose=False)
            client.predict(api_name="/start")
            session = bot.start()  # the script's own mirror of the state, to know what to answer
            text = openings[targets.index(target)]
            for _ in range(args.turns):
                t0 = time.perf_counter()
                client.predict(text, api_name="/respond")
                over_http.append(time.perf_counter() - t0)
                session = bot.handle_text(session, text)
                if session.finished:
                    break
                text = scripted_messages(bot, target, session)
    finally:
        demo.close()

    def summary(seconds: list[float]) -> dict[str, float]:
        ms = np.asarray(seconds) * 1000.0
        return {
            "turns": len(ms),
            "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max()),
        }

    label = {False: "in process, no retriever", True: "in process, with the retriever (as `crs chat`)"}
    rows: dict[str, dict[str, Any]] = {
        label[mode]: {**summary(in_process[mode]), "found": found[mode]} for mode in retriever_modes
    }
    rows["through the Gradio server"] = {**summary(over_http), "found": None}
    print(f"{args.dataset}: server start {server_start:.1f} s")
    print("| retriever | start-up s | first reply ms |\n|---|---|---|")
    for mode in retriever_modes:
        print(f"| {'on' if mode else 'off'} | {startup[mode]:.1f} | {1000 * first_reply[mode]:.0f} |")
    print("| path | turns | found | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['turns']} | {row['found'] if row['found'] is not None else ''} | "
            f"{row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['max_ms']:.1f} |"
        )
    report = {
        "dataset": args.dataset,
        "startup": [
            {"retriever": mode, "seconds": startup[mode], "first_reply_ms": 1000 * first_reply[mode]}
            for mode in retriever_modes
        ],
        "server_start_seconds": server_start,
        "conversations": len(targets),
        "reply_time": rows,
        "cpus": os.cpu_count(),
    }
    (args.out / "chat.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'chat.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
