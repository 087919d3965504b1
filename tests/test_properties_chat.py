"""Property tests of the chat's handlers through the served app (gradio_client, a real server):
whatever a client sends (any text, a button never offered, one offered long ago, a preference or
a policy that does not exist), the server answers without an error and the answer is a chat whose
last word is the assistant's, with buttons that are valid right now.

Conversations carry over between examples (a small pool of open tabs), so the examples reach deep
states (a question, a list, a "Did you mean ...?", a finished search) without replaying a whole
conversation each time; a failure shows the tab's steps so far."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crs.chat import ChatBot

POOL = 4
# The words of a refusal: the click was not valid for the state it was sent in.
REFUSALS = (
    "not one of the choices",
    "not on the list now",
    "was not in the list",
    "was not offered",
    "which item do you mean",
    "Nothing is on the table yet",
    "Tell me first what you are looking for",
    "We are done here",
)
KINDS = ("answer", "choice", "title", "accept", "reject", "more", "drop", "zzz", "", "ACCEPT", " accept")
# Gradio's own check of a dropdown's value, before any handler runs: the only error allowed, and
# only for the two dropdown inputs (the preference to remove, the policy).
DROPDOWN_REFUSAL = re.compile(r"is not in the list of choices")


@dataclass
class Tab:
    client: Any
    chat: list[dict[str, Any]] = field(default_factory=list)
    panel: str = ""
    choices: list[int] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    steps: list[str] = field(default_factory=list)

    def offered(self, cards: bool) -> list[str]:
        options = self.chat[-1].get("options") or [] if self.chat else []
        values = [str(option["value"]) for option in options]
        if cards:  # the film cards' buttons of the list on screen
            items = [value.split(":", 1)[1] for value in values if value.startswith("accept:")]
            values += [f"{kind}:{item}" for item in items for kind in ("more", "drop")]
        return values


@pytest.fixture(scope="module")
def tabs(app_url: str) -> Iterator[list[Tab]]:
    from gradio_client import Client

    # ssl_verify=False: plain http here; the default builds a certificate store per request.
    opened = [Tab(Client(app_url, verbose=False, ssl_verify=False)) for _ in range(POOL)]
    for tab in opened:
        remember(tab, tab.client.predict(api_name="/start"))
    yield opened
    for tab in opened:
        tab.client.close()


def remember(tab: Tab, outputs: Any) -> None:
    tab.chat, tab.panel, dropdown = outputs[0], str(outputs[1]), outputs[2]
    tab.choices = [value for _, value in (dropdown or {}).get("choices") or []]
    tab.seen.update(tab.offered(cards=True))


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def understood(panel: str) -> tuple[str, ...]:
    """What a click must not change when it is refused: the turns and the preferences."""
    keep = ("**Turns so far:**", "**You like:**", "**You don't want:**", "**Your pick:**")
    return tuple(line for line in panel.split("\n") if line.startswith(keep))


def check_well_formed(bot: ChatBot, outputs: Any, where: str) -> None:
    chat, panel, dropdown = outputs[0], str(outputs[1]), outputs[2]
    assert isinstance(chat, list) and chat, where
    assert all(m["role"] in ("user", "assistant") for m in chat), where
    assert chat[-1]["role"] == "assistant" and text_of(chat[-1]).strip(), where
    assert panel.startswith("### What I understood"), where
    n_items, n_attributes = bot.catalog.n_items, len(bot.catalog.attributes)
    for _, value in (dropdown or {}).get("choices") or []:
        assert 0 <= int(value) < n_attributes, where
    options = chat[-1].get("options") or []
    for rank, option in enumerate(options, 1):
        value, label = str(option["value"]), str(option["label"])
        kind, _, argument = value.partition(":")
        if kind == "answer":
            assert argument in ("yes", "no", "dont_know"), where
        elif kind == "choice":
            assert 0 <= int(argument) < n_attributes, where
        elif kind == "title":
            assert argument == "none" or (0 <= int(argument) < n_items), where
            assert label == ("Neither" if argument == "none" else bot.catalog.items[int(argument)].title), (
                where
            )
        elif kind == "accept":
            assert 0 <= int(argument) < n_items, where
            assert label == f"{rank}. {bot.catalog.items[int(argument)].title}", where
        else:
            assert value == "reject" and option is options[-1], where
    for other in chat[:-1]:
        assert not other.get("options"), where  # buttons go under the last message only


def last_words(chat: list[dict[str, Any]]) -> str:
    """The assistant's last words, the folded "Why?" left out."""
    for message in reversed(chat):
        if message["role"] == "assistant" and not (message.get("metadata") or {}).get("title"):
            return text_of(message)
    return ""


# --- what a client may send ----------------------------------------------------------------------

WISHES = (
    "something {genre}",
    "a {genre} film from the {decade}",
    "like {title}",
    "I loved {title} but no {genre}",
    "{title}",
    "{genre}",
    "yes",
    "no",
    "don't care",
    "the first one",
    "number 11",
    "none of these",
    "more like the third one",
    "start over",
    "help",
)


@st.composite
def wishes(draw: st.DrawFn, bot: ChatBot) -> str:
    attributes = bot.catalog.attributes
    template = draw(st.sampled_from(WISHES))
    text = template.format(
        genre=draw(st.sampled_from([a.name for a in attributes if a.group == "genre"])).lower(),
        decade=draw(st.sampled_from([a.name for a in attributes if a.group == "decade"])),
        title=bot.catalog.items[draw(st.integers(0, bot.catalog.n_items - 1))].title,
    )
    noise = draw(st.text(max_size=12))
    return draw(st.sampled_from([text, text + noise, noise + " " + text, text.upper()]))


def texts(bot: ChatBot) -> st.SearchStrategy[str]:
    return st.one_of(
        wishes(bot),
        st.text(max_size=80),  # any unicode, control characters included
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        st.builds(lambda part, times: part * times, st.text(min_size=1, max_size=12), st.integers(200, 4000)),
        st.sampled_from(
            ["", " ", "\n\t", "\x00", "<script>alert(1)</script>", "**bold** [x](y)", "é" * 3000]
        ),
    )


ARGUMENTS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.integers(0, 20_000).map(str),  # around the catalog's items (MovieLens: a few thousand)
    st.text(max_size=8),
    st.sampled_from(["", "none", "yes", "dont_know", "-0", "+1", "1.0", " 1", "٣", "²", "①", "0x10"]),
)


def actions(bot: ChatBot) -> st.SearchStrategy[tuple[Any, ...]]:
    """(tab index, what, argument): one request on one of the open tabs."""
    tab = st.integers(0, POOL - 1)
    return st.one_of(
        st.tuples(tab, st.just("text"), texts(bot)),
        st.tuples(tab, st.just("never"), st.tuples(st.sampled_from(KINDS), ARGUMENTS)),
        st.tuples(tab, st.just("offered"), st.integers(0, 40)),
        st.tuples(tab, st.just("stale"), st.integers(0, 10_000)),
        st.tuples(tab, st.just("remove"), st.one_of(st.none(), st.integers(-(10**12), 10**12))),
        st.tuples(tab, st.just("remove_valid"), st.integers(0, 10)),
        st.tuples(
            tab,
            st.just("policy"),
            st.one_of(st.text(max_size=12), st.sampled_from(["belief", "max_entropy", "random", "BELIEF"])),
        ),
        st.tuples(tab, st.just("restart"), st.none()),
    )


def test_any_request_gets_a_well_formed_reply(tabs: list[Tab], movie_bot: ChatBot, app_url: str) -> None:
    from gradio_client.exceptions import AppError

    bot = movie_bot
    cards = bot.details is not None

    @settings(
        max_examples=1000,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(action=actions(bot))
    # Past the catalog, and digits `str.isdigit` accepts but `int` does not: always tried.
    @example(action=(0, "never", ("accept", str(bot.catalog.n_items))))
    @example(action=(1, "never", ("title", "\u2460")))
    @example(action=(2, "never", ("choice", "\u00b2")))
    def one_request(action: tuple[Any, ...]) -> None:
        index, what, argument = action
        tab = tabs[index]
        offered = tab.offered(cards)
        before = understood(tab.panel)
        if what == "text":
            api, value = "/respond", argument
        elif what == "never":
            kind, arg = argument
            api, value = "/act", f"{kind}:{arg}"
        elif what == "offered":
            if not offered:
                return
            api, value = "/act", offered[argument % len(offered)]
        elif what == "stale":
            stale = sorted(tab.seen - set(offered))
            if not stale:
                return
            api, value = "/act", stale[argument % len(stale)]
        elif what == "remove":
            api, value = "/remove", argument
        elif what == "remove_valid":
            if not tab.choices:
                return
            api, value = "/remove", tab.choices[argument % len(tab.choices)]
        elif what == "policy":
            api, value = "/policy", argument
        else:
            api, value = "/restart", None
        tab.steps.append(f"{api} {value!r}"[:300])
        where = f"tab {index}, steps so far:\n" + "\n".join(tab.steps[-12:])
        try:
            outputs = tab.client.predict(api_name=api) if value is None and api == "/restart" else None
            if outputs is None:
                outputs = tab.client.predict(value, api_name=api)
        except AppError as error:
            # Only Gradio's own check of a dropdown's value may refuse, and it changes nothing.
            assert api in ("/remove", "/policy") and DROPDOWN_REFUSAL.search(str(error)), f"{error}\n{where}"
            peek = tab.client.predict(None, api_name="/remove")  # no preference removed: the state
            assert peek[0] == tab.chat, where
            return
        check_well_formed(bot, outputs, where)
        if api == "/respond":
            assert outputs[3] == "", where  # the textbox is cleared
        new_words = last_words(outputs[0])
        if what == "offered":
            # A button on offer is valid now: it is taken, not refused.
            assert not any(refusal in new_words for refusal in REFUSALS), f"{value}: {new_words}\n{where}"
        if what in ("never", "stale") and value not in offered:
            # A button not on offer changes nothing the person said or chose.
            assert understood(str(outputs[1])) == before, f"{value}: {new_words}\n{where}"
        remember(tab, outputs)

    one_request()
