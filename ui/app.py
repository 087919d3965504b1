"""The browser chat: a Gradio page around `crs.chat.ChatBot`.

Every browser tab gets its own `ChatSession` in a `gr.State`; the `ChatBot` (catalog, policy,
language understanding) is shared read-only. Handlers are plain functions of (session, input) ->
(session, outputs), so they are the same whether a person clicks in a browser or a test calls them
through gradio_client.

A session left idle for `session_ttl` seconds is dropped by Gradio (its memory freed, its saved
transcripts deleted); with a `ChatLog` every event is appended to the log first, so nothing said
is lost with it.
"""

from __future__ import annotations

import datetime
import functools
import html
import logging
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr

from crs.chat import ChatBot, ChatSession, build_bot
from crs.chat_log import ChatLog, ChatLogError
from crs.settings import Settings
from crs.types import AcceptReply, Answer, AnswerReply, Ask, Recommend, RejectReply
from ui.lab import build_lab_tab

__all__ = ["build_bot", "build_demo", "click", "launch"]

MAX_MESSAGE_CHARACTERS = 100_000  # longer input is cut (the understanding reads far less anyway)
TITLE = "crs: find something you will like"
SESSION_TTL_SECONDS = 3600.0  # `chat.session_minutes`: idle time after which a session is dropped
LOGGER = logging.getLogger(__name__)


def render(bot: ChatBot, session: ChatSession) -> list[dict[str, Any]]:
    """The chat as Gradio message dicts: answer buttons under a question, one per item under a list,
    and the policy's reasons folded under each of its messages."""
    out: list[dict[str, Any]] = []
    for message in session.messages:
        text = plain_text(message.text) if message.role == "user" else message.text
        out.append({"role": message.role, "content": text})
        if message.why:
            # "done": Gradio draws the reason folded; a person unfolds it when they wonder why.
            out.append(
                {"role": "assistant", "content": message.why, "metadata": {"title": "Why?", "status": "done"}}
            )
    # Gradio shows the buttons of the last message only: put them there, under the reasons.
    if out and out[-1]["role"] == "assistant" and (not session.finished or session.offered):
        buttons = options(bot, session)
        if buttons:
            out[-1]["options"] = buttons
    return out


def message_at(session: ChatSession, shown: int) -> int | None:
    """The session message behind the `shown`-th message on screen (a folded "Why?" belongs to the
    message above it), as `render` lays them out; None past the end."""
    position = 0
    for index, message in enumerate(session.messages):
        position += 2 if message.why else 1
        if shown < position:
            return index
    return None


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def plain_text(text: str) -> str:
    """A person's words shown as they typed them: HTML escaped and Markdown characters
    backslash-escaped, so that "<script>" or "**hi**" appear literally, not as markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def options(bot: ChatBot, session: ChatSession) -> list[dict[str, str]]:
    pending = session.pending
    if session.offered:  # "Did you mean A or B?": one button per film
        return [
            {"label": bot.catalog.items[item].title, "value": f"title:{item}"} for item in session.offered
        ] + [{"label": "Neither", "value": "title:none"}]
    values = bot.choices(session)
    if values:  # a multiple-choice question ("Which decade?"): one button per value
        return [{"label": name, "value": f"choice:{attribute}"} for attribute, name in values] + [
            {"label": "Don't care", "value": "answer:dont_know"}
        ]
    if isinstance(pending, Ask):
        return [
            {"label": "Yes", "value": "answer:yes"},
            {"label": "No", "value": "answer:no"},
            {"label": "Don't care", "value": "answer:dont_know"},
        ]
    if isinstance(pending, Recommend):
        choices = [
            {"label": f"{rank}. {bot.catalog.items[item].title}", "value": f"accept:{item}"}
            for rank, item in enumerate(pending.items, 1)
        ]
        return choices + [{"label": "None of these", "value": "reject"}]
    return []


def side_panel(bot: ChatBot, session: ChatSession) -> str:
    state = session.state
    names = [a.name for a in bot.catalog.attributes]
    liked = ", ".join(names[a] for a in state.accepted_attributes) or "nothing yet"
    disliked = ", ".join(names[a] for a in state.rejected_attributes) or "nothing yet"
    lines = [
        "### What I understood",
        f"**You like:** {liked}",
        f"**You don't want:** {disliked}",
    ]
    like_items, unlike_items = bot.named_items(session)
    if like_items:
        lines.append("**Films like:** " + ", ".join(bot.catalog.items[i].title for i in like_items))
    if unlike_items:
        lines.append("**Nothing like:** " + ", ".join(bot.catalog.items[i].title for i in unlike_items))
    lines.append(f"**Turns so far:** {state.turn}")
    if session.with_people:
        lines.append("**With:** " + ", ".join(session.with_people))
    if session.without_people:
        lines.append("**Without:** " + ", ".join(session.without_people))
    in_play = bot.in_play(session) if state.history else None
    if in_play is not None:
        considered, likely = in_play
        noun = "films" if bot.domain == "movies" else "items"
        lines.append(f"**Likely {noun}:** {likely:,} (of {considered:,} still in play)")
    if session.accepted_item is not None:
        lines.append(f"**Your pick:** {bot.catalog.items[session.accepted_item].title}")
    return "\n\n".join(lines)


def constraints(bot: ChatBot, session: ChatSession) -> list[tuple[str, int]]:
    names = [a.name for a in bot.catalog.attributes]
    state = session.state
    return [(f"like: {names[a]}", a) for a in state.accepted_attributes] + [
        (f"not: {names[a]}", a) for a in state.rejected_attributes
    ]


def build_demo(
    bot: ChatBot,
    settings: Settings | None = None,
    log: ChatLog | None = None,
    session_ttl: float = SESSION_TTL_SECONDS,
) -> gr.Blocks:
    """The chat page and, in a second tab, the policy lab on the same catalog (`settings`: the
    chat's, whose scorer, cache folder and policy defaults the lab's runs use). `log`: where every
    event of every conversation is appended; `session_ttl`: seconds of idleness that end a session."""
    # Saved transcripts: each tab writes only under its own folder (named by its unguessable id),
    # removed when the session ends; Gradio serves a copy from its cache, never this folder.
    downloads = Path(tempfile.mkdtemp(prefix="crs-chat-downloads-"))
    log_failed: list[bool] = []  # warned once: a full disk must not stop the chat

    def logged(session: ChatSession, kind: str, value: Any = None) -> ChatSession:
        if log is not None:
            event: Mapping[str, Any] = {"kind": kind} if value is None else {"kind": kind, "value": value}
            try:
                log.append(bot.log_entry(session, event))
            except ChatLogError as error:
                if not log_failed:
                    log_failed.append(True)
                    LOGGER.warning("chat log stopped: %s", error)
        return session

    def new_session(seed: int = 0, policy: str = "", tab: str = "", kind: str = "start") -> ChatSession:
        session = bot.start(seed, policy, log_id=tab or secrets.token_hex(16))
        return logged(session, kind, policy if kind == "policy" else None)

    def drop_downloads(session: ChatSession | None) -> None:
        """Gradio drops an idle session: its saved transcripts go with it, and (once Gradio has
        emptied it) Gradio's own record of the session."""
        if isinstance(session, ChatSession) and session.log_id:
            shutil.rmtree(downloads / session.log_id, ignore_errors=True)
        threading.Timer(2.0, forget_idle_sessions, (demo, session_ttl)).start()

    def close_tab(request: gr.Request) -> None:
        """A closed tab expires as an idle one does: Gradio would keep its state an hour whatever
        the TTL (and a tab that only lost its connection for a moment must not lose it at once)."""
        if request.session_hash:
            threading.Timer(1.0, expire_like_idle, (demo, request.session_hash)).start()

    def outputs(session: ChatSession) -> tuple[Any, ...]:
        return (
            session,
            render(bot, session),
            side_panel(bot, session),
            gr.Dropdown(choices=constraints(bot, session), value=None),
        )

    def start() -> tuple[Any, ...]:
        return outputs(new_session())

    def restart_tab(session: ChatSession | None) -> tuple[Any, ...]:
        """The same tab, its next conversation, with the policy it had chosen."""
        if session is None:
            return start()
        return outputs(new_session(session.seed + 1, session.policy, session.log_id))

    def switch(policy: str, session: ChatSession | None) -> tuple[Any, ...]:
        """Another policy: a fresh conversation with it (a learned one may train first, once)."""
        from crs.registry import POLICIES

        if policy not in POLICIES.names():  # only a client, not the dropdown, can send another
            return outputs(session or new_session())
        if session is None:
            return outputs(new_session(0, policy, kind="policy"))
        return outputs(new_session(session.seed + 1, policy, session.log_id, kind="policy"))

    def respond(text: str, session: ChatSession | None) -> tuple[Any, ...]:
        session = session or new_session()
        text = (text or "")[:MAX_MESSAGE_CHARACTERS]
        if not text.strip():
            return (*outputs(session), "")
        return (*outputs(logged(bot.handle_text(session, text), "text")), "")

    def choose(session: ChatSession | None, event: gr.SelectData) -> tuple[Any, ...]:
        session = session or new_session()
        value = str(event.value.get("value") if isinstance(event.value, dict) else event.value)
        return outputs(logged(click(bot, session, value), "button", value))

    def remove(attribute: int | None, session: ChatSession | None) -> tuple[Any, ...]:
        session = session or new_session()
        if attribute is None:
            return outputs(session)
        return outputs(logged(bot.remove_constraint(session, int(attribute)), "remove", int(attribute)))

    def act(value: str, session: ChatSession | None) -> tuple[Any, ...]:
        """A button by its value (the cards' buttons, and clients without a browser)."""
        value = str(value or "")
        return outputs(logged(click(bot, session or new_session(), value), "button", value))

    def judge(session: ChatSession | None, event: gr.LikeData) -> ChatSession | None:
        """A thumbs up or down: kept with the conversation (and logged) with the list it judged."""
        if session is None or not isinstance(event.index, int):
            return session
        message = message_at(session, event.index)
        if message is None:
            return session
        liked = event.liked if isinstance(event.liked, bool) else None
        return logged(
            bot.give_feedback(session, message, liked), "feedback", {"message": message, "liked": liked}
        )

    def download(session: ChatSession | None) -> str:
        session = session or new_session()
        folder = downloads / session.log_id
        folder.mkdir(exist_ok=True)
        path = folder / "transcript.jsonl"
        path.write_text(bot.transcript_jsonl(session), encoding="utf-8")
        return str(path)

    # delete_cache: Gradio's own copies of saved transcripts are removed after a session's time.
    ttl = max(1, int(session_ttl))
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(ttl, ttl)) as demo:
        session = gr.State(time_to_live=session_ttl, delete_callback=drop_downloads)
        weakref.finalize(demo, shutil.rmtree, downloads, ignore_errors=True)
        gr.Markdown(f"## {TITLE}\nCatalog: **{bot.dataset.name}**, {bot.catalog.n_items:,} items.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"), gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(height=520, label="Chat", elem_id="chat")
                    pressed = gr.Textbox(visible=False)  # a card button's value, for `act`
                    text = gr.Textbox(
                        placeholder="Say what you like, answer, or pick from the list…",
                        show_label=False,
                        elem_id="message",
                    )
                    with gr.Row():
                        send = gr.Button("Send", variant="primary", elem_id="send")
                        restart = gr.Button("Restart", elem_id="restart")
                        save = gr.Button("Save transcript", elem_id="save")

                    @gr.render(inputs=[session])
                    def film_cards(current: ChatSession | None) -> None:
                        """The list on screen as cards, each with its own three buttons."""
                        shown = bot.cards(current) if current is not None else ()
                        if not shown:
                            return
                        with gr.Column(elem_id="cards"):
                            for item, card in shown:
                                with gr.Group(elem_classes="film-card"):
                                    gr.Markdown(card)
                                    with gr.Row():
                                        for label, value in (
                                            ("This one", f"accept:{item}"),
                                            ("More like this", f"more:{item}"),
                                            ("Not this one", f"drop:{item}"),
                                        ):
                                            button = gr.Button(label, size="sm", elem_classes="card-button")
                                            button.click(
                                                functools.partial(act, value),
                                                [session],
                                                shared,
                                                api_visibility="private",
                                            )

                    transcript = gr.File(label="Transcript (JSONL, the evaluation format)", visible=True)

                with gr.Column(scale=1):
                    panel = gr.Markdown(elem_id="understood")
                    constraint = gr.Dropdown(label="Remove a preference", choices=[], elem_id="constraint")
                    forget = gr.Button("Remove", elem_id="remove")
                    from crs.registry import POLICIES

                    chooser = gr.Dropdown(
                        label="Question policy (starts over)",
                        choices=POLICIES.names(),
                        value=bot.default_policy,
                        elem_id="policy",
                    )
            with gr.Tab("Policy lab", id="lab-tab"):
                build_lab_tab(bot.dataset, settings, session_ttl=session_ttl)
        shared = [session, chat, panel, constraint]
        demo.load(start, None, shared, api_name="start")
        send.click(respond, [text, session], [*shared, text], api_name="respond")
        text.submit(respond, [text, session], [*shared, text])
        chat.option_select(choose, [session], shared)
        # A new conversation: the last one's saved transcript is no longer on offer.
        restart.click(restart_tab, [session], shared, api_name="restart").then(lambda: None, None, transcript)
        forget.click(remove, [constraint, session], shared, api_name="remove")
        save.click(download, [session], [transcript], api_name="download")
        pressed.change(act, [pressed, session], shared, api_name="act")
        chooser.change(switch, [chooser, session], shared, api_name="policy")
        chat.like(judge, [session], [session], api_visibility="private")
        demo.unload(close_tab)
    return demo


def forget_idle_sessions(demo: gr.Blocks, idle_seconds: float) -> None:
    """Gradio deletes an expired `gr.State` but keeps its own per-session record (a copy of the
    page's configuration, ~1,000 objects) until 10,000 sessions have come: drop the records of
    sessions idle for `idle_seconds` whose state is all gone, so memory follows the live sessions."""
    holder = getattr(demo, "state_holder", None)
    if holder is None:
        return
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=idle_seconds)
    with holder.lock:
        for session_hash in list(holder.session_data):
            used = holder.time_last_used.get(session_hash)
            if used is not None and used <= cutoff and not holder.session_data[session_hash].state_data:
                del holder.session_data[session_hash]
                del holder.time_last_used[session_hash]


def expire_like_idle(demo: gr.Blocks, session_hash: str) -> None:
    """Undo Gradio's mark on a closed tab (run after Gradio sets it), so that its state's own time
    to live applies rather than Gradio's fixed hour for closed tabs. A tab whose state is already
    gone leaves no record (answering its unload event made Gradio a new, empty one)."""
    holder = getattr(demo, "state_holder", None)
    if holder is None:
        return
    with holder.lock:
        record = holder.session_data.get(session_hash)
        if record is not None and not record.state_data:
            del holder.session_data[session_hash]
            holder.time_last_used.pop(session_hash, None)
        elif record is not None:
            record.is_closed = False


def click(bot: ChatBot, session: ChatSession, value: str) -> ChatSession:
    """A button under the last message: "answer:yes|no|dont_know", "choice:<attribute>" (a value
    of a multiple-choice question), "title:<item>|none" (a film a "Did you mean ...?" offers),
    "accept:<item>" or "reject"; on a film card also "more:<item>" and "drop:<item>"."""
    kind, _, argument = value.partition(":")
    # ASCII digits only: str.isdigit() also takes "²" and "①", which int() refuses.
    number = int(argument) if argument.isascii() and argument.isdigit() else None
    if kind == "more" and number is not None:
        return bot.more_like_item(session, number)
    if kind == "drop" and number is not None:
        return bot.drop_item(session, number)
    if kind == "title" and (number is not None or argument == "none"):
        return bot.pick_offered(session, number)
    if kind == "choice" and number is not None:
        return bot.choose(session, number)
    if kind == "answer" and argument in {a.value for a in Answer}:
        if bot.choices(session) and argument != Answer.DONT_KNOW.value:
            return session  # "Which decade?" offers its values and "Don't care", not yes or no
        return bot.handle_reply(session, AnswerReply(Answer(argument)))
    if kind == "accept" and number is not None:
        return bot.handle_reply(session, AcceptReply(number))
    if value == "reject":
        return bot.handle_reply(session, RejectReply())
    return session


def launch(
    bot: ChatBot,
    host: str = "127.0.0.1",
    port: int | None = None,
    block: bool = True,
    settings: Settings | None = None,
    auth: tuple[str, str] | None = None,
    log_dir: ChatLog | str | Path | None = None,
    session_ttl: float | None = None,
) -> Any:
    """Serve the chat on `host` (local only by default; never through Gradio's public share
    links), behind Gradio's login when `auth` (user, password) is given; `log_dir`: a folder (or
    an open `ChatLog`) to append every conversation to; `session_ttl`: seconds an idle session is
    kept (default: the settings' `chat.session_minutes`). Raises `ChatLogError` when the log
    cannot be written."""
    if session_ttl is None:
        session_ttl = settings.chat.session_minutes * 60 if settings is not None else SESSION_TTL_SECONDS
    log = log_dir if isinstance(log_dir, ChatLog) else ChatLog(Path(log_dir)) if log_dir else None
    demo = build_demo(bot, settings, log, session_ttl)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=True,
        auth=auth,
    )
    return demo
