"""What people really type, end to end through the served app (gradio_client), one test per
problem found by trying the chat as a new user would (issue: "The chat must understand what
people really type"). Each scenario talks like a person and checks what a person would see."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crs.chat import ChatBot


class Visitor:
    """One person in the browser app: says things, reads the last reply and the side panel."""

    def __init__(self, app_url: str) -> None:
        from gradio_client import Client

        self.client = Client(app_url, verbose=False)
        self.client.predict(api_name="/start")
        self.chat: list[dict[str, Any]] = []
        self.panel = ""

    def say(self, text: str) -> str:
        self.chat, self.panel, _, _ = self.client.predict(text, api_name="/respond")
        return self.last_reply()

    def last_reply(self) -> str:
        """The assistant's last words (the folded "Why?" note that may follow them left out)."""
        for message in reversed(self.chat):
            if message["role"] == "assistant" and not (message.get("metadata") or {}).get("title"):
                content = message["content"]
                if isinstance(content, list):
                    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return str(content)
        return ""

    def shown_items(self) -> list[int]:
        """The items of the list on screen, as its buttons carry them (empty when it asks)."""
        options = self.chat[-1].get("options") or []
        return [int(str(o["value"]).split(":")[1]) for o in options if str(o["value"]).startswith("accept:")]

    def answer_until_a_list(self, answers: tuple[str, ...] = ("yes", "no") * 6) -> list[int]:
        for answer in answers:
            if self.shown_items():
                break
            self.say(answer)
        items = self.shown_items()
        assert items, self.last_reply()
        return items


def _item(bot: ChatBot, title: str) -> int:
    return next(item.index for item in bot.catalog.items if item.title == title)


def test_like_the_matrix_but_less_violent(app_url: str, movie_bot: ChatBot) -> None:
    """Similar films, not the film itself, and nothing tagged violent."""
    visitor = Visitor(app_url)
    visitor.say("something like The Matrix but less violent")
    assert "Matrix, The (1999)" in visitor.panel and "violence" in visitor.panel
    items = visitor.answer_until_a_list()
    matrix = _item(movie_bot, "Matrix, The (1999)")
    violence = next(a.index for a in movie_bot.catalog.attributes if a.name == "violence")
    genres = {a.name: a.index for a in movie_bot.catalog.attributes if a.group == "genre"}
    assert len(items) >= 5 and matrix not in items
    assert not any(violence in movie_bot.catalog.items[i].attributes for i in items)
    science_or_action = {genres["Sci-Fi"], genres["Action"]}
    near = sum(bool(science_or_action & set(movie_bot.catalog.items[i].attributes)) for i in items)
    assert near > len(items) / 2, [movie_bot.catalog.items[i].title for i in items]


@pytest.mark.parametrize("message", ["I loved Get Out", "something like get out", "i loved get out"])
def test_a_title_without_its_year_is_understood_and_not_offered_back(
    app_url: str, movie_bot: ChatBot, message: str
) -> None:
    visitor = Visitor(app_url)
    reply = visitor.say(message)
    assert "Sorry" not in reply and "Get Out (2017)" in visitor.panel
    assert _item(movie_bot, "Get Out (2017)") not in visitor.answer_until_a_list()


def test_a_sequel_the_catalog_lacks_is_said_plainly(app_url: str) -> None:
    visitor = Visitor(app_url)
    reply = visitor.say("I watched Frozen 2 with my kids")
    assert "Frozen 2" in reply and "not in my catalog" in reply
    assert "Frozen (2013)" not in visitor.panel


def test_titles_in_a_list_and_with_a_possessive(app_url: str) -> None:
    visitor = Visitor(app_url)
    visitor.say("Groundhog Day, Home Alone, and Disney's Coco")
    for title in ("Groundhog Day (1993)", "Home Alone (1990)", "Coco (2017)"):
        assert title in visitor.panel, visitor.panel


def test_an_answer_about_another_topic_means_what_it_says(app_url: str, movie_bot: ChatBot) -> None:
    """ "I'd rather not have anything scary", said to a question about another genre, rules out
    horror and says nothing about the genre asked."""
    visitor = Visitor(app_url)
    visitor.say("a funny movie")
    asked = visitor.last_reply()
    visitor.say("I'd rather not have anything scary")
    wanted, unwanted = _panel_preferences(visitor.panel)
    assert "Horror" in unwanted
    for genre in ("Action", "Drama", "Thriller", "Romance", "Adventure"):
        if genre.lower() in asked.lower():
            assert genre not in unwanted and genre not in wanted


def test_a_later_statement_overrides_an_earlier_one(app_url: str) -> None:
    visitor = Visitor(app_url)
    visitor.say("a comedy please")
    visitor.say("actually, no comedy, something scary")
    wanted, unwanted = _panel_preferences(visitor.panel)
    assert "Comedy" in unwanted and "Comedy" not in wanted and "Horror" in wanted
    assert not set(wanted) & set(unwanted)


def test_a_change_of_mind_starts_over(app_url: str) -> None:
    """ "actually no, ..." replaces the earlier wish: The Matrix is no longer what they want."""
    visitor = Visitor(app_url)
    visitor.say("something like The Matrix but less violent")
    assert "Films like:** Matrix, The (1999)" in visitor.panel
    visitor.say("hmm actually no, I'm more in the mood for a romance")
    wanted, unwanted = _panel_preferences(visitor.panel)
    assert wanted == ["Romance"] and "Films like" not in visitor.panel, visitor.panel


def test_one_film_of_the_list_turned_down_in_words(app_url: str) -> None:
    """ "not the third one" takes that film off the list and keeps the others."""
    visitor = Visitor(app_url)
    visitor.say("a funny movie from the 90s")
    shown = visitor.answer_until_a_list()
    visitor.say("not the third one")
    assert visitor.shown_items() == shown[:2] + shown[3:], visitor.last_reply()


def test_a_list_turned_down_with_what_instead(app_url: str) -> None:
    """ "less childish please" to a family list: that list goes, and children's films are unwanted."""
    visitor = Visitor(app_url)
    visitor.say("something for a family movie night, nothing too scary")
    shown = visitor.answer_until_a_list()
    visitor.say("less childish please")
    wanted, unwanted = _panel_preferences(visitor.panel)
    assert "Children" in unwanted and "Children" not in wanted and "Horror" in unwanted
    assert not set(visitor.shown_items()) & set(shown)


def _panel_preferences(panel: str) -> tuple[list[str], list[str]]:
    def listed(label: str) -> list[str]:
        match = re.search(rf"\*\*{label}:\*\* (.*)", panel)
        assert match is not None, panel
        return [] if match.group(1) == "nothing yet" else match.group(1).split(", ")

    return listed("You like"), listed("You don't want")


def test_the_first_frozen_movie_and_a_shared_title(app_url: str) -> None:
    """ "the first frozen movie" is understood; "like King Kong", which three films share, is asked
    back with a button per film, and the click is what is understood."""
    visitor = Visitor(app_url)
    visitor.say("the first frozen movie")
    assert "Frozen (2013)" in visitor.panel, visitor.panel
    visitor = Visitor(app_url)
    reply = visitor.say("something like King Kong")
    assert reply.startswith("Did you mean King Kong")
    buttons = {o["label"]: o["value"] for o in visitor.chat[-1].get("options") or []}
    assert {"King Kong (1933)", "King Kong (2005)", "Neither"} <= set(buttons)
    visitor.chat, visitor.panel, _ = visitor.client.predict(buttons["King Kong (2005)"], api_name="/act")
    assert "King Kong (2005)" in visitor.panel and "King Kong (1933)" not in visitor.panel


def test_a_person_asked_for_leads_the_list(app_url: str, movie_bot: ChatBot) -> None:
    """ "a comedy with jim carrey": mostly his films, and the panel says who was asked for."""
    assert movie_bot.people is not None
    carrey = set(movie_bot.people.people["jim carrey"].films)
    visitor = Visitor(app_url)
    visitor.say("a comedy with jim carrey")
    assert "**With:** Jim Carrey" in visitor.panel
    items = visitor.answer_until_a_list()
    assert sum(item in carrey for item in items[:5]) >= 4, items
