"""`crs view DIR` on a chat log folder (`crs chat --log-dir DIR`): the people's conversations,
measured as `crs evaluate` measures simulated ones (a success is an item the person took)."""

from __future__ import annotations

import argparse
import sys

from crs.chat_log import ChatLogError, LoggedConversation, feedback_counts, read_chat_logs
from crs.cli.common import CliError


def view_chat_logs(args: argparse.Namespace) -> int:
    from crs.chat import CHAT_MAX_TURNS
    from crs.evaluation.metrics import compute_metrics
    from crs.evaluation.report import markdown_table

    try:
        conversations, skipped = read_chat_logs(args.run)
    except ChatLogError as error:
        raise CliError(str(error)) from None
    for line in skipped[:5]:
        print(f"warning: skipped {line}", file=sys.stderr)
    if len(skipped) > 5:
        print(f"warning: skipped {len(skipped) - 5} more lines", file=sys.stderr)
    if not conversations:
        raise CliError(f"{args.run}: the chat logs hold no conversation")
    if args.why or args.explain or args.sample:
        raise CliError("--why, --explain and --sample read evaluation runs; a chat log shows the words")
    wanted = set(args.conversation or [])
    outside = sorted(n for n in wanted if not 1 <= n <= len(conversations))
    if outside:
        raise CliError(f"--conversation {outside[0]}: the logs hold conversations 1..{len(conversations)}")

    # A person may talk longer than the simulated protocol: failures count the chat's own limit.
    metrics = compute_metrics([c.record.outcome for c in conversations], CHAT_MAX_TURNS).as_dict()
    up, down = feedback_counts(conversations)
    datasets = ", ".join(sorted({c.record.dataset for c in conversations}))
    policies = ", ".join(sorted({c.record.policy for c in conversations}))
    # The simulated runs' table, less what a person's chat does not have (decision times, speed).
    cells = [str(metrics["conversations"]), str(metrics["successes"])]
    cells += [f"{metrics[key]:.3f}" for key in ("SR@5", "SR@10", "SR@15")]
    cells += [f"{metrics['AT']:.2f}", f"{metrics['hDCG']:.3f}"]
    headers = ["dataset", "policy", "n", "took an item", "SR@5", "SR@10", "SR@15", "AT", "hDCG"]
    print(markdown_table(headers, [[datasets, policies, *cells]]))
    print(f"\nsessions: {len({c.session for c in conversations})}, thumbs up: {up}, thumbs down: {down}\n")
    rows = [
        [
            str(number),
            c.started[:19].replace("T", " "),
            c.session[:8],
            str(len(c.record.extra.get("messages") or ())),
            c.record.termination,
            _taken(c),
        ]
        for number, c in enumerate(conversations, 1)
    ]
    print(markdown_table(["#", "started (UTC)", "session", "messages", "end", "took"], rows))
    failures_left = args.failures
    for number, conversation in enumerate(conversations, 1):
        show = number in wanted
        if not show and failures_left > 0 and not conversation.accepted:
            failures_left -= 1
            show = True
        if show:
            print(f"\nconversation {number} (session {conversation.session}, {conversation.started} UTC):")
            for message in conversation.record.extra.get("messages") or ():
                if isinstance(message, dict):
                    who = "person" if message.get("role") == "user" else "bot"
                    text = str(message.get("text", "")).strip().replace("\n", "\n" + " " * 10)
                    print(f"  {who:>6}: {text}")
            for judged in conversation.feedback:
                liked = judged.get("liked")
                if isinstance(liked, bool):
                    verdict = "thumbs up" if liked else "thumbs down"
                    print(f"  {verdict} on message {judged.get('message')}: items {judged.get('items')}")
    return 0


def _taken(conversation: LoggedConversation) -> str:
    titles = conversation.record.extra.get("titles")
    item = conversation.record.target_item
    if not conversation.accepted or not isinstance(titles, dict):
        return ""
    return str(titles.get(str(item), item))
