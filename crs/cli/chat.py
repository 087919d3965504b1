"""`crs chat`: the browser chat (Gradio on 127.0.0.1), with the policy lab in a second tab."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from crs.cli.common import CliError, add_data_flags, add_policy_flags, progress_bars, settings_from_args

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

FLAGS = {
    "data.dir": "data_dir",
    "chat.dataset": "dataset",
    "chat.policy": "policy",
    "chat.port": "port",
    "chat.log_dir": "log_dir",
    "chat.chroma_url": "chroma_url",
    "paths.cache_dir": "cache_dir",
}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("chat", help="chat in the browser (Gradio, on 127.0.0.1)")
    add_data_flags(parser)
    parser.add_argument("--dataset", default=None, help="catalog to chat about (default: movielens)")
    add_policy_flags(parser, " (default: belief)")
    parser.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    parser.add_argument(
        "--host",
        default=LOCAL_HOSTS[0],
        help="address to serve on (default: 127.0.0.1, this machine only); any other needs --auth",
    )
    parser.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="ask visitors to log in (Gradio's login); required with --host unless --insecure",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="with --host: serve without a login, to anyone who can reach the address",
    )
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        help="append every conversation to DIR, turn by turn, with thumbs up/down (see: crs view DIR)",
    )
    parser.add_argument(
        "--no-retriever",
        action="store_true",
        help="skip the embedding retriever (its first build embeds the whole catalog: ~1 minute)",
    )
    parser.add_argument(
        "--chroma-url",
        metavar="http://HOST:PORT",
        help="keep the retriever's vectors on this chroma server (`chroma run`), shared by every chat "
        "that names it (default: [chat] chroma_url; empty = an embedded store in the cache folder)",
    )
    parser.set_defaults(handler=run)


def login(args: argparse.Namespace) -> tuple[str, str] | None:
    """Gradio's (user, password) from --auth; a chat served beyond this machine must have one
    unless --insecure says otherwise (checked before anything is loaded)."""
    auth = None
    if args.auth is not None:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise CliError("--auth takes USER:PASSWORD, both non-empty")
        auth = (user, password)
    if args.host not in LOCAL_HOSTS and auth is None and not args.insecure:
        raise CliError(
            f"refusing to serve the chat on {args.host} without a login: add --auth USER:PASSWORD "
            "(or --insecure to let anyone who reaches the address in)"
        )
    return auth


def run(args: argparse.Namespace) -> int:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no phoning home
    auth = login(args)
    settings = settings_from_args(args, FLAGS, policy_section="chat")
    log = None
    if settings.chat.log_dir:  # opened before the catalog loads: a folder that fails, fails at once
        from crs.chat_log import ChatLog, ChatLogError

        try:
            log = ChatLog(Path(settings.chat.log_dir))
        except ChatLogError as error:
            raise CliError(f"{error} (--log-dir)") from None
    started = time.perf_counter()
    use_retriever = settings.chat.retriever and not args.no_retriever
    if use_retriever and settings.chat.chroma_url:
        from crs.retrieval.server import StoreUnreachable, check_reachable

        try:  # before the catalog and the models load: a wrong URL fails in seconds
            check_reachable(settings.chat.chroma_url)
        except StoreUnreachable as error:
            raise CliError(str(error)) from None
    from crs.chat import build_bot  # after the checks above: gradio and the models take seconds
    from ui.app import launch

    with progress_bars() as progress:
        try:
            bot = build_bot(settings, use_retriever=use_retriever, progress=progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    demo = launch(
        bot, args.host, settings.chat.port or None, block=False, settings=settings, auth=auth, log_dir=log
    )
    seconds = time.perf_counter() - started
    print(f"crs chat ({bot.dataset.name}, policy {settings.chat.policy}) ready in {seconds:.1f} s")
    if bot.details is not None:
        print(
            f"film details (directors, cast, plot) for {bot.details.coverage:,} of "
            f"{bot.catalog.n_items:,} films, from {bot.details.source}"
        )
    elif bot.domain == "movies":
        print("no film details: the data folder has no redial/movie_text.jsonl (cards show titles only)")
    if log is not None:
        print(f"logging every conversation to {log.path} (read it with: crs view {settings.chat.log_dir})")
    print(
        f"open {demo.local_url} in a browser; Ctrl+C stops; a conversation idle for "
        f"{settings.chat.session_minutes:g} minutes is closed",
        flush=True,
    )
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        if log is not None:
            log.close()
    return 0
