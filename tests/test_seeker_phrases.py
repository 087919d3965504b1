"""The LLM user in the manner of real seekers (`simulators.seeker_phrases`, `--llm-phrasing
seekers`): real ReDial messages read by the chat's reader, retrieved with the real MiniLM, and
the user's words built on them. The model is the real one in the slow test; elsewhere a scripted
backend stands in for a model that gets the words right or wrong, which a real one does at will."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scripted_llm import ScriptedBackend

from crs.cli import main
from crs.data import Dataset
from crs.data.redial import load_dialogues, seeker_half
from crs.evaluation.fidelity import real_messages
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.language import Understander
from crs.language.titles import TitleGuard, typed_title
from crs.retrieval.encoder import MiniLmEncoder
from crs.settings import LLMSettings, LLMUserSettings
from crs.types import AcceptReply, Answer, AnswerReply, Ask, InformReply, Recommend, RejectReply
from simulators.llm_user import LLMUser
from simulators.persona import Persona
from simulators.seeker_phrases import (
    GREETING,
    SeekerPhrases,
    opening_frame,
    read_seeker_message,
    seeker_texts,
)

SEEKERS = LLMUserSettings(behaviour="protocol", phrasing="seekers")


@pytest.fixture(scope="module")
def reader(movielens_dataset: Dataset) -> Understander:
    return Understander(movielens_dataset.catalog, popularity=movielens_dataset.popularity)


@pytest.fixture(scope="module")
def encoder() -> MiniLmEncoder:
    return MiniLmEncoder()


# (text, opens its dialogue, closes it): real seekers' kinds of message, written for the tests.
MESSAGES = [
    ("Hi there!", True, False),
    ("Hello, how are you?", True, False),
    ("Hi! I'm looking for a good comedy", True, False),
    ("Hello I like horror movies", True, False),
    ("nope", False, False),
    ("no, not for me", False, False),
    ("Not really, no", False, False),
    ("No, I haven't seen it", False, False),
    ("yes!", False, False),
    ("Oh yeah, sounds good", False, False),
    ("Yes I love that one", False, False),
    ("Any others?", False, False),
    ("I have seen all of those", False, False),
    ("I loved Toy Story", False, False),
    ("Thanks, have a good night!", False, True),
]


@pytest.fixture(scope="module")
def phrases(reader: Understander, encoder: MiniLmEncoder) -> SeekerPhrases:
    messages = [read_seeker_message(reader, *m) for m in MESSAGES]
    frames = [f for f in (opening_frame(reader, m.text) for m in messages if m.first and m.wants) if f]
    return SeekerPhrases(messages, encoder.encode([m[0] for m in MESSAGES]), encoder, frames, ["Hi there!"])


def test_one_half_of_redial_gives_words_and_the_other_is_compared_with(data_dir: Path) -> None:
    dialogues = load_dialogues(data_dir, "train")
    halves = [seeker_half(d.conversation_id) for d in dialogues]
    assert halves == [seeker_half(d.conversation_id) for d in dialogues]  # a hash, not a draw
    assert 0.4 < halves.count("phrasing") / len(halves) < 0.6
    said = {
        half: sum(
            1
            for d, h in zip(dialogues, halves, strict=True)
            if h == half
            for m in d.messages
            if m.seeker and m.text.strip()
        )
        for half in ("phrasing", "comparison")
    }
    assert len(seeker_texts(data_dir)) == said["phrasing"]
    assert len(real_messages(data_dir, "redial")) == said["comparison"]


@pytest.mark.parametrize(
    ("text", "answer", "list_reply", "wants", "title"),
    [
        ("nope", Answer.NO, "reject", (), False),
        ("yes!", Answer.YES, None, (), False),
        ("the second one", None, "accept", (), False),
        ("Any others?", None, "reject", (), False),
        ("Hi! I'm looking for a good comedy", None, None, ("Comedy",), False),
        ("I loved The Godfather", None, None, (), True),
    ],
)
def test_seekers_messages_are_labelled_by_the_chats_reader(
    reader: Understander, text: str, answer: Answer | None, list_reply: str | None, wants: tuple, title: bool
) -> None:
    message = read_seeker_message(reader, text, first=False, last=False)
    assert (message.answer, message.list_reply, message.wants, message.names_title) == (
        answer,
        list_reply,
        wants,
        title,
    )


def test_openings_give_the_words_a_wish_follows(reader: Understander) -> None:
    assert opening_frame(reader, "Hi! I'm looking for a good comedy") == "Hi! I'm looking for"
    assert opening_frame(reader, "Hello I like horror movies") == "Hello I like"
    assert opening_frame(reader, "Comedy please") is None  # nothing before the wish
    assert opening_frame(reader, "Hi there!") is None  # no wish at all


def test_examples_are_of_the_kind_near_in_meaning_and_seeded(phrases: SeekerPhrases) -> None:
    nos = {m.text for m in phrases.messages if m.fits("no")}
    # A bare "nope" is 0.3 % of what seekers say and what a small model falls back to: not shown.
    assert nos == {"no, not for me", "Not really, no", "No, I haven't seen it"}
    assert phrases.count("opening") == 2 and phrases.count("quit") == 1
    drawn = [m.text for m in phrases.examples("no", "no (Horror)", np.random.default_rng(3), k=2)]
    assert len(drawn) == 2 and set(drawn) <= nos
    again = [m.text for m in phrases.examples("no", "no (Horror)", np.random.default_rng(3), k=2)]
    assert drawn == again
    nearest = phrases.nearest("reject", "I have already seen them all")
    assert phrases.messages[nearest[0]].text == "I have seen all of those"
    short = phrases.nearest("no", "no", k=1, verbosity="short")
    assert phrases.messages[short[0]].words <= 6


def _target(dataset: Dataset) -> int:
    """A comedy from the 1990s that lacks Horror."""
    catalog = dataset.catalog
    names = {a.name: a.index for a in catalog.attributes}
    return next(
        i.index
        for i in catalog.items
        if names["Comedy"] in i.attributes
        and names["1990s"] in i.attributes
        and names["Horror"] not in i.attributes
    )


def _user(
    dataset: Dataset,
    phrases: SeekerPhrases,
    reader: Understander,
    backend: ScriptedBackend,
    **changes: object,
) -> LLMUser:
    arguments: dict[str, object] = {
        "backend": backend,
        "settings": SEEKERS,
        "phrases": phrases,
        "understander": reader,
    }
    arguments.update(changes)
    return LLMUser(dataset.catalog, _target(dataset), **arguments)  # type: ignore[arg-type]


def test_the_model_writes_after_real_examples_at_a_seeded_temperature(
    movielens_dataset: Dataset, phrases: SeekerPhrases, reader: Understander
) -> None:
    horror = next(a.index for a in movielens_dataset.catalog.attributes if a.name == "Horror")
    model = ScriptedBackend([" nah, horror is not my thing"])
    user = _user(movielens_dataset, phrases, reader, model)
    said = user.answer(Ask(horror), "Are you in the mood for horror?", 2, np.random.default_rng(0))
    assert (said.text, said.source, said.understood) == (
        "nah, horror is not my thing",
        "llm",
        AnswerReply(Answer.NO),
    )
    request = model.requests[0]
    assert request.fresh and request.temperature == SEEKERS.phrasing_temperature
    prompt = request.prompt or ""
    assert prompt.count("Decision: no") == 3 + 1  # three real examples, then this decision
    shown = ("no, not for me", "Not really, no", "No, I haven't seen it")
    assert all(f"Person: {m}\n" in prompt for m in shown)
    again = _user(movielens_dataset, phrases, reader, ScriptedBackend([" nah"]))
    again.answer(Ask(horror), "Are you in the mood for horror?", 2, np.random.default_rng(0))
    assert again.backend.requests[0] == request  # type: ignore[union-attr]


def test_words_that_lose_the_decision_give_way_to_a_real_seekers(
    movielens_dataset: Dataset, phrases: SeekerPhrases, reader: Understander
) -> None:
    horror = next(a.index for a in movielens_dataset.catalog.attributes if a.name == "Horror")
    lost = ScriptedBackend([" yes, love it"])  # the model says yes; the decision is no
    user = _user(movielens_dataset, phrases, reader, lost)
    said = [user.answer(Ask(horror), "Horror?", 2, np.random.default_rng(seed)) for seed in range(8)]
    assert {s.source for s in said} == {"seeker"}
    assert {s.understood for s in said} == {AnswerReply(Answer.NO)}
    # "No, I haven't seen it" is not how anyone turns down a genre: never said to a question.
    assert {s.text for s in said} == {"no, not for me", "Not really, no"}
    others = tuple(i for i in range(20) if i != user.target)
    refused = user.answer(Recommend(others[:10]), "list", 3, np.random.default_rng(0))
    assert refused.source == "seeker" and refused.understood == RejectReply()


def test_a_choice_names_the_shown_film_or_points_at_it(
    movielens_dataset: Dataset, phrases: SeekerPhrases, reader: Understander
) -> None:
    model = ScriptedBackend([" whatever"])
    user = _user(movielens_dataset, phrases, reader, model)
    others = [i for i in range(20) if i != user.target]
    shown = (*others[:2], user.target, *others[2:9])
    title = typed_title(movielens_dataset.catalog.items[user.target].title)
    said = [user.answer(Recommend(shown), "list", 3, np.random.default_rng(seed)) for seed in range(12)]
    assert {s.understood for s in said} == {AcceptReply(user.target)}
    assert {s.source for s in said} == {"seeker"}
    named = sum(title in s.text for s in said)  # on the screen now: 60 % name it
    assert 2 <= named <= 11
    assert any("third" in s.text for s in said)
    assert not model.requests  # pointing needs no model


def test_openings_are_greeted_and_name_liked_films_never_the_target(
    movielens_dataset: Dataset, phrases: SeekerPhrases, reader: Understander
) -> None:
    catalog = movielens_dataset.catalog
    own = typed_title(catalog.items[_target(movielens_dataset)].title)
    liked = ["Toy Story", "Heat", own]
    persona = Persona(opening_attributes=2)
    user = _user(
        movielens_dataset,
        phrases,
        reader,
        ScriptedBackend([" I want something"]),
        liked_titles=liked,
        settings=replace(SEEKERS, behaviour="persona"),
        persona=persona,
    )
    assert own not in user.liked_titles
    said = [user.open(np.random.default_rng(seed)) for seed in range(30)]
    assert all(isinstance(s.understood, InformReply) and s.understood.attributes for s in said)
    assert sum(bool(GREETING.match(s.text)) for s in said) >= 20  # 80 % greet first
    named = [s for s in said if "Toy Story" in s.text or "Heat" in s.text]
    assert 3 <= len(named) <= 20  # 30 % name a film they liked
    guard = TitleGuard(catalog.items[user.target].title)
    assert not any(guard.leaks(s.text) for s in said)


def test_seekers_phrasing_needs_the_phrases(movielens_dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="real seekers"):
        LLMUser(
            movielens_dataset.catalog,
            _target(movielens_dataset),
            backend=ScriptedBackend(["x"]),
            settings=SEEKERS,
        )
    # Without a model the words are the templates, and no phrases are needed.
    LLMUser(movielens_dataset.catalog, _target(movielens_dataset), settings=SEEKERS)


@pytest.mark.slow
def test_whole_conversations_like_seekers_are_seeded_and_read_right(movielens_dataset: Dataset) -> None:
    """Three conversations with the real model and the real phrases (ReDial's phrasing half,
    embedded once: about a minute on 2 cores), twice: the same words, every reply read back."""
    spec = RunSpec(
        dataset="movielens",
        policy="belief",
        scorer="bpr",
        simulator="llm",
        limit=3,
        llm=LLMSettings(backend="local", cache=False),
        llm_user=LLMUserSettings(phrasing="seekers"),
    )
    policy = policy_for_run(spec, movielens_dataset)
    first, second = (evaluate(spec, movielens_dataset, policy) for _ in range(2))
    texts = [[t.user_text for t in r.turns] for r in first.records]
    assert texts == [[t.user_text for t in r.turns] for r in second.records]
    summary = first.summary()
    assert summary["agreement"] >= 0.95
    assert (summary["first_draft_agreement"] or 0) + (summary["seeker_rate"] or 0) > 0.8


def test_a_music_catalog_cannot_borrow_movie_seekers_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    command = ["evaluate", "--dataset", "lastfm_star", "--simulator", "llm", "--llm-phrasing", "seekers"]
    assert main([*command, "--limit", "2", "--out", str(out), "--quiet"]) == 2
    assert "movie seekers" in capsys.readouterr().err and not out.exists()
