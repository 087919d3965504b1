"""Natural language generation: the system's side of the chat, from templates.

Templates rather than a model: every sentence is predictable, safe and instant, and varying the
wording over a few templates per situation keeps a long conversation from sounding canned. The
choice among templates is seeded: every function takes a `random.Random`, never the global one,
so a conversation replays word for word. Explanations reuse `knowledge_graph.Explanation` (the
graph path of a recommendation) instead of recomputing it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crs.types import Attribute, Catalog

if TYPE_CHECKING:
    from crs.data.film_details import FilmDetails
    from knowledge_graph.graph import Explanation

_ASK: dict[str, tuple[str, ...]] = {
    "genre": (
        "Are you in the mood for {a} {name}?",
        "How about {a} {name}?",
        "Would you enjoy {a} {name}?",
    ),
    "decade": (
        "Something from the {name}?",
        "Are you after something from the {name}?",
        "Do the {name} appeal?",
    ),
    "tag": ("Do you like films that are {name}?", "Should it be {name}?", "Would something {name} suit you?"),
    "music": ("Do you like {name}?", "Are you into {name}?", "How about some {name}?"),
}
_ACK = ("Got it: {text}.", "Okay: {text}.", "Noted: {text}.", "Sure, {text}.")
_CLARIFY = (
    "Sorry, I didn't quite get that. {hint}",
    "I'm not sure I understood. {hint}",
    "Could you say that another way? {hint}",
)
_HINT = "Tell me a genre, a decade or a title you like, or type 'help'."
_PRESENT = ("Here are some ideas:", "You might like these:", "How about one of these?")
HELP_TEXT = (
    "Tell me what you're in the mood for, in your own words: a genre, a decade, a mood, or a title "
    'you like ("something like Toy Story", "no horror", "90s comedies"). Answer my questions with '
    'yes, no, "don\'t know" or "don\'t care". When I show a list, pick one by its number ("#2"), '
    'say "none of these", or "more like the first". Say "start over" to begin again, "bye" to leave.'
)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def ask_attribute(attribute: Attribute, rng: random.Random, *, domain: str = "movies") -> str:
    """A yes/no question about one attribute, worded by its group (genre, decade, tag) and domain."""
    group = attribute.group if attribute.group in _ASK else "tag"
    if domain == "music" and group == "tag":
        group = "music"
    name = attribute.name if group == "decade" else attribute.name.lower()
    template = rng.choice(_ASK[group])
    return template.format(a=_article(name), name=name)


def acknowledge(catalog: Catalog, wanted: Sequence[int], unwanted: Sequence[int], rng: random.Random) -> str:
    """Confirms understood preferences: "Got it: comedy, not horror." (empty when there are none)."""
    names = [catalog.attributes[a].name.lower() for a in wanted]
    text = ", ".join(names)
    if unwanted:
        nots = " or ".join(catalog.attributes[a].name.lower() for a in unwanted)
        text = f"{text}, not {nots}" if text else f"no {nots}"
    return rng.choice(_ACK).format(text=text) if text else ""


def clarify(rng: random.Random, question: str | None = None) -> str:
    """Asks back instead of guessing; `question` is the understander's own (e.g. "Did you mean ...?")."""
    return question or rng.choice(_CLARIFY).format(hint=_HINT)


def present(catalog: Catalog, items: Sequence[int], rng: random.Random, *, facts: int = 2) -> str:
    """A numbered list: title and up to `facts` readable facts (links left out) per item."""
    lines = [rng.choice(_PRESENT)]
    for number, index in enumerate(items, start=1):
        item = catalog.items[index]
        # Links are for cards, not chat lines; a year already in the title is not repeated.
        shown = [v for _, v in item.facts if not v.startswith("http") and v not in item.title][:facts]
        suffix = f" ({'; '.join(shown)})" if shown else ""
        lines.append(f"{number}. {item.title}{suffix}")
    lines.append('Pick a number, or say "none of these".')
    return "\n".join(lines)


def card(catalog: Catalog, item: int, rank: int, film: FilmDetails | None) -> str:
    """A film as a card (Markdown): "**2. Heat (1995)** · Action, Crime, Thriller", then who
    directed it and who is in it, then the plot line, where the details have them."""
    entry = catalog.items[item]
    genres = [catalog.attributes[a].name for a in entry.attributes if catalog.attributes[a].group == "genre"]
    lines = [f"**{rank}. {entry.title}**" + (f" · {', '.join(genres)}" if genres else "")]
    if film is not None:
        people = []
        if film.directors:
            people.append("Directed by " + _join(film.directors))
        if film.cast:
            people.append(("with " if people else "With ") + _join(film.cast))
        if people:
            lines.append(", ".join(people))
        if film.plot:
            lines.append(f"*{_first_sentence(film.plot)}*")
    return "  \n".join(lines)  # a Markdown line break inside one paragraph


def _first_sentence(plot: str, longest: int = 160) -> str:
    """A plot cut to one line: its first sentence when the whole is long."""
    if len(plot) <= longest:
        return plot
    end = plot.find(". ", 40)
    return plot[: end + 1] if 0 < end < longest else plot[:longest].rsplit(" ", 1)[0] + " …"


def help_text() -> str:
    return HELP_TEXT


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def explain(explanation: Explanation, rng: random.Random) -> str:
    """One or two sentences from a graph path explanation (`AttributeGraph.explain`).

    Names what the user asked for and the item has, then the social evidence (friends first, then
    similar users); falls back to the graph's own wording when there is neither.
    """
    sentences: list[str] = []
    title = explanation.item_label
    if explanation.matched_labels:
        matched = _join([label.lower() for label in explanation.matched_labels[:3]])
        sentences.append(
            rng.choice(
                (
                    f"You asked for {matched}, and {title} has exactly that.",
                    f"{title} is {matched}, just as you said.",
                    f"{title} matches what you told me: {matched}.",
                )
            )
        )
    if explanation.n_friends:
        who = (
            "one of your friends"
            if explanation.n_friends == 1
            else f"{explanation.n_friends} of your friends"
        )
        sentences.append(
            f"{who[0].upper()}{who[1:]} liked it too." if sentences else f"{who.capitalize()} liked {title}."
        )
    elif explanation.n_similar_users:
        n = explanation.n_similar_users
        who = "someone with taste like yours" if n == 1 else f"{n} people with taste like yours"
        sentences.append(
            f"{who[0].upper()}{who[1:]} chose it." if sentences else f"{who.capitalize()} chose {title}."
        )
    if not sentences:
        return explanation.text
    return " ".join(sentences[:2])
