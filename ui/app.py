"""The browser chat: a Gradio page around `crs.chat.ChatBot`.

Every browser tab gets its own `ChatSession` in a `gr.State`; the `ChatBot` (catalog, policy,
language understanding) is shared read-only. Handlers are plain functions of (session, input) ->
(session, outputs), so they are the same whether a person clicks in a browser or a test calls them
through gradio_client.
"""

from __future__ import annotations

import functools
import html
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from crs.chat import ChatBot, ChatSession, build_bot
from crs.settings import Settings
from crs.types import AcceptReply, Answer, AnswerReply, Ask, Recommend, RejectReply
from ui.lab import build_lab_tab

__all__ = ["build_bot", "build_demo", "click", "launch"]

MAX_MESSAGE_CHARACTERS = 100_000  # longer input is cut (the understanding reads far less anyway)
TITLE = "crs: find something you will like"


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


def build_demo(bot: ChatBot, settings: Settings | None = None) -> gr.Blocks:
    """The chat page and, in a second tab, the policy lab on the same catalog (`settings`: the
    chat's, whose scorer, cache folder and policy defaults the lab's runs use)."""

    def outputs(session: ChatSession) -> tuple[Any, ...]:
        return (
            session,
            render(bot, session),
            side_panel(bot, session),
            gr.Dropdown(choices=constraints(bot, session), value=None),
        )

    def start() -> tuple[Any, ...]:
        return outputs(bot.start())

    def switch(policy: str, session: ChatSession | None) -> tuple[Any, ...]:
        """Another policy: a fresh conversation with it (a learned one may train first, once)."""
        seed = session.seed + 1 if session else 0
        return outputs(bot.start(seed, policy))

    def respond(text: str, session: ChatSession | None) -> tuple[Any, ...]:
        session = session or bot.start()
        text = (text or "")[:MAX_MESSAGE_CHARACTERS]
        if not text.strip():
            return (*outputs(session), "")
        return (*outputs(bot.handle_text(session, text)), "")

    def choose(session: ChatSession | None, event: gr.SelectData) -> tuple[Any, ...]:
        session = session or bot.start()
        value = str(event.value.get("value") if isinstance(event.value, dict) else event.value)
        return outputs(click(bot, session, value))

    def remove(attribute: int | None, session: ChatSession | None) -> tuple[Any, ...]:
        session = session or bot.start()
        if attribute is None:
            return outputs(session)
        return outputs(bot.remove_constraint(session, int(attribute)))

    def act(value: str, session: ChatSession | None) -> tuple[Any, ...]:
        """A button by its value (the cards' buttons, and clients without a browser)."""
        return outputs(click(bot, session or bot.start(), str(value or "")))

    def download(session: ChatSession | None) -> str:
        session = session or bot.start()
        folder = Path(tempfile.mkdtemp(prefix="crs-chat-"))
        path = folder / "transcript.jsonl"
        path.write_text(bot.transcript_jsonl(session), encoding="utf-8")
        return str(path)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        session = gr.State()
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
                build_lab_tab(bot.dataset, settings)
        shared = [session, chat, panel, constraint]
        demo.load(start, None, shared, api_name="start")
        send.click(respond, [text, session], [*shared, text], api_name="respond")
        text.submit(respond, [text, session], [*shared, text])
        chat.option_select(choose, [session], shared)
        # A new conversation: the last one's saved transcript is no longer on offer.
        restart.click(start, None, shared, api_name="restart").then(lambda: None, None, transcript)
        forget.click(remove, [constraint, session], shared, api_name="remove")
        save.click(download, [session], [transcript], api_name="download")
        pressed.change(act, [pressed, session], shared, api_name="act")
        chooser.change(switch, [chooser, session], shared, api_name="policy")
    return demo


def click(bot: ChatBot, session: ChatSession, value: str) -> ChatSession:
    """A button under the last message: "answer:yes|no|dont_know", "choice:<attribute>" (a value
    of a multiple-choice question), "title:<item>|none" (a film a "Did you mean ...?" offers),
    "accept:<item>" or "reject"; on a film card also "more:<item>" and "drop:<item>"."""
    kind, _, argument = value.partition(":")
    if kind == "more" and argument.isdigit():
        return bot.more_like_item(session, int(argument))
    if kind == "drop" and argument.isdigit():
        return bot.drop_item(session, int(argument))
    if kind == "title" and (argument.isdigit() or argument == "none"):
        return bot.pick_offered(session, int(argument) if argument.isdigit() else None)
    if kind == "choice" and argument.isdigit():
        return bot.choose(session, int(argument))
    if kind == "answer" and argument in {a.value for a in Answer}:
        return bot.handle_reply(session, AnswerReply(Answer(argument)))
    if kind == "accept" and argument.isdigit():
        return bot.handle_reply(session, AcceptReply(int(argument)))
    if kind == "reject":
        return bot.handle_reply(session, RejectReply())
    return session


def launch(
    bot: ChatBot,
    host: str = "127.0.0.1",
    port: int | None = None,
    block: bool = True,
    settings: Settings | None = None,
    auth: tuple[str, str] | None = None,
) -> Any:
    """Serve the chat on `host` (local only by default; never through Gradio's public share
    links), behind Gradio's login when `auth` (user, password) is given."""
    demo = build_demo(bot, settings)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=True,
        auth=auth,
    )
    return demo
