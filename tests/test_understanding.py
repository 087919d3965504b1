"""Language understanding: accuracy on the labelled utterance sets (a regression breaks the build),
the dev / held-out split, focused behaviours (negation, fuzzy titles, reactions), robustness and
speed, the word lists and title guard, and generation."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from crs.data import Dataset
from crs.language import MAX_CHARS, MentionItem, MoreLike, RejectItem, Understander, Unknown
from crs.language.evaluation import (
    evaluate,
    evaluate_parts,
    format_parts_table,
    load_all_labelled,
    load_labelled,
    main_act,
)
from crs.language.generation import acknowledge, ask_attribute, clarify, present
from crs.language.lexicon import LEXICON, load_lexicon, parse_lexicon
from crs.language.titles import TitleGuard
from crs.types import AcceptReply, Answer, AnswerReply, Ask, InformReply, Recommend, RejectReply

DATA = Path(__file__).parent / "data"
# Measured, micro F1 dev / all: movielens 0.938 / 0.939, lastfm_star 0.945 / 0.938; held out 0.942
# and 0.924 (see benchmarks/understanding.py). The held-out part is not checked against the act
# floor: "reject" has 4 and 2 held-out messages there and misses one of each (recall 0.75, 0.50).
MICRO_F1 = {"movielens": 0.90, "lastfm_star": 0.90}
MAIN_ACTS = ("answer", "inform", "mention", "accept", "reject")
ACT_FLOOR = 0.80  # per-act precision and recall of the main acts


@pytest.fixture(scope="module")
def movielens(movielens_dataset: Dataset) -> Understander:
    return Understander(movielens_dataset.catalog, popularity=movielens_dataset.popularity)


@pytest.fixture(scope="module")
def lastfm(lastfm_star: Dataset) -> Understander:
    return Understander(lastfm_star.catalog)


@pytest.mark.parametrize("part", ["dev", "all"])
@pytest.mark.parametrize("name", ["movielens", "lastfm_star"])
def test_accuracy_on_labelled_utterances(name: str, part: str, request: pytest.FixtureRequest) -> None:
    understander: Understander = request.getfixturevalue("movielens" if name == "movielens" else "lastfm")
    labelled = load_labelled(DATA / f"utterances_{name}.jsonl", understander.catalog)
    assert len(labelled) >= 150
    report = evaluate(understander, [row for row in labelled if part == "all" or row.part == part])
    assert report.micro.f1 >= MICRO_F1[name], report.errors
    for act in MAIN_ACTS:
        score = report.acts[act]
        assert score.precision >= ACT_FLOOR and score.recall >= ACT_FLOOR, (act, score)


@pytest.mark.parametrize("name", ["movielens", "lastfm_star"])
def test_held_out_part_is_a_stratified_third(name: str) -> None:
    lines = (DATA / f"utterances_{name}.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert {row["part"] for row in rows} == {"dev", "heldout"}
    assert 0.25 <= sum(row["part"] == "heldout" for row in rows) / len(rows) <= 0.40
    parts_of = Counter((main_act(row["acts"]), row["part"]) for row in rows)
    for act in {main_act(row["acts"]) for row in rows}:
        if parts_of[act, "dev"] + parts_of[act, "heldout"] >= 2:
            assert parts_of[act, "dev"] and parts_of[act, "heldout"], act


def test_fresh_messages_are_a_part_of_their_own(movielens: Understander, tmp_path: Path) -> None:
    for suffix in ("", "_fresh"):
        source = (DATA / "utterances_movielens.jsonl").read_text(encoding="utf-8").splitlines()[:3]
        rows = [json.loads(line) for line in source]
        if suffix:
            rows = [{key: value for key, value in row.items() if key != "part"} for row in rows]
        text = "\n".join(json.dumps(row) for row in rows)
        (tmp_path / f"utterances_movielens{suffix}.jsonl").write_text(text + "\n", encoding="utf-8")
    labelled = load_all_labelled(tmp_path, "movielens", movielens.catalog)
    assert Counter(row.part for row in labelled)["fresh"] == 3
    reports = evaluate_parts(movielens, labelled)
    assert set(reports) == {"dev", "heldout", "all", "fresh"}
    assert reports["all"].n_messages == 3 and reports["fresh"].n_messages == 3
    assert "fresh" in format_parts_table(reports, "movielens").splitlines()[1]


def _attr(understander: Understander, dataset_id: object) -> int:
    return understander.catalog.attribute_index(dataset_id)  # type: ignore[arg-type]


def _inform(result_acts: tuple[object, ...]) -> InformReply:
    informs = [a for a in result_acts if isinstance(a, InformReply)]
    assert len(informs) == 1, result_acts
    return informs[0]


@pytest.mark.parametrize(
    ("text", "unwanted"),
    [
        ("anything but horror", "genre:Horror"),
        ("no 80s stuff", "decade:1980s"),
        ("not too scary please", "genre:Horror"),
        ("I hate musicals", "genre:Musical"),
        ("I don't want anything depressing", "tag:depressing"),
    ],
)
def test_negation(movielens: Understander, text: str, unwanted: str) -> None:
    inform = _inform(movielens.understand(text).acts)
    assert inform.unwanted == (_attr(movielens, unwanted),)
    assert inform.attributes == ()


def test_negation_scope_ends_at_but(movielens: Understander) -> None:
    inform = _inform(movielens.understand("no horror, but I love 90s comedies").acts)
    assert set(inform.attributes) == {_attr(movielens, "decade:1990s"), _attr(movielens, "genre:Comedy")}
    assert inform.unwanted == (_attr(movielens, "genre:Horror"),)


def test_answer_plus_inform(movielens: Understander) -> None:
    acts = movielens.understand("no, but I love 90s dramas", Ask(_attr(movielens, "genre:Comedy"))).acts
    assert acts[0] == AnswerReply(Answer.NO)
    assert set(_inform(acts).attributes) == {
        _attr(movielens, "decade:1990s"),
        _attr(movielens, "genre:Drama"),
    }


def test_a_hesitation_leads_into_a_wish_and_alone_is_unsure(movielens: Understander) -> None:
    ask = Ask(_attr(movielens, "genre:Action"))
    acts = movielens.understand("hmm actually no sci-fi, I'm more in the mood for a romance", ask).acts
    assert not any(isinstance(act, AnswerReply) for act in acts), acts
    inform = _inform(acts)
    assert inform.attributes == (_attr(movielens, "genre:Romance"),)
    assert inform.unwanted == (_attr(movielens, "genre:Sci-Fi"),)
    assert movielens.understand("hmm", ask).acts == (AnswerReply(Answer.DONT_KNOW),)
    assert movielens.understand("hmm not sure", ask).acts == (AnswerReply(Answer.DONT_KNOW),)
    assert movielens.understand("hmm no", ask).acts[0] == AnswerReply(Answer.NO)


@pytest.mark.parametrize(
    ("text", "movie_id"),
    [("something like toy stroy", 1), ("the godfather 2", 1221), ("like the matrx", 2571)],
)
def test_fuzzy_titles(movielens: Understander, text: str, movie_id: int) -> None:
    mentions = [a for a in movielens.understand(text).acts if isinstance(a, MentionItem)]
    assert [movielens.catalog.items[m.item].id for m in mentions] == [movie_id]


def _mentioned(understander: Understander, text: str) -> list[str]:
    acts = understander.understand(text).acts
    return [understander.catalog.items[a.item].title for a in acts if isinstance(a, MentionItem)]


@pytest.mark.parametrize(
    ("text", "titles"),
    [
        # without the year, capitalised as people write titles
        ("I loved Get Out", ["Get Out (2017)"]),
        ("The Matrix was good, the sequels not so much.", ["Matrix, The (1999)"]),
        # lower case after a cue, when the title is all that follows
        ("i loved get out", ["Get Out (2017)"]),
        # a message that is just a title
        ("frozen", ["Frozen (2013)"]),
        # lists, possessives, subtitles, short names
        (
            "Groundhog Day, Home Alone, and Disney's Coco",
            ["Groundhog Day (1993)", "Home Alone (1990)", "Coco (2017)"],
        ),
        ("I think I saw Valentine's Day", ["Valentine's Day (2010)"]),
        ("I enjoyed Thor: Ragnarok", ["Thor: Ragnarok (2017)"]),
        (
            "action movies like Mission: Impossible and The Matrix",
            ["Mission: Impossible (1996)", "Matrix, The (1999)"],
        ),
        ("Pursuit of Happiness is more my thing", ["Pursuit of Happiness (2001)"]),
        ("I like The Thing", ["Thing, The (1982)"]),
        # "the first X": the film of that title, not its sequels (and not a fuzzy guess after it)
        ("the first frozen movie", ["Frozen (2013)"]),
        ("I liked the original jumanji", ["Jumanji (1995)"]),
        ("the first movie was great", []),
        # only the whole capitalised run counts: "Motherless Brooklyn" is not "Brooklyn"
        ("Did Motherless Brooklyn get good reviews?", []),
        # after "a", words describe a kind of film, unless the title opens with the article
        ("I feel like a scary movie", []),
        ("a scary movie", []),
        ("i love scary movie", ["Scary Movie (2000)"]),
        ("I loved a bugs life", ["Bug's Life, A (1998)"]),
        # punctuation inside titles: commas, initialisms, titles of address, numbers, numerals
        ("Have you seen Monsters, Inc. ?", ["Monsters, Inc. (2001)"]),
        (
            "I love Crazy, Stupid, Love and The Proposal",
            ["Crazy, Stupid, Love. (2011)", "Proposal, The (2009)"],
        ),
        ("I like Toy Story, Cars, and Heat", ["Toy Story (1995)", "Cars (2006)", "Heat (1995)"]),
        ("my kids adore Mrs. Doubtfire", ["Mrs. Doubtfire (1993)"]),
        ("one like P.S. I Love You", ["P.S. I Love You (2007)"]),
        ("we watched E.T. the Extra-Terrestrial", ["E.T. the Extra-Terrestrial (1982)"]),
        ("something like Gone in 60 Seconds?", ["Gone in 60 Seconds (2000)"]),
        ("better than Men in Black II", ["Men in Black II (a.k.a. MIIB) (a.k.a. MIB 2) (2002)"]),
        # a run with no title: its longest beginning that is one, cut before "by", "with", "is"
        ("I loved The Lion King by Disney", ["Lion King, The (1994)"]),
        ("thinking about Birds of Prey tonight", []),  # not "The Birds"
        # a sentence's capitalised first word, as the subject of a verb
        ("Braveheart is one I haven't seen in years", ["Braveheart (1995)"]),
        ("Oh yeah! Logan was fantastic", ["Logan (2017)"]),  # and "fantastic" is no misspelt title
        ("Nothing is better than a good comedy", []),
        # the article typed, or "new" / "original", choose among films of one title
        ("I thought The Heat was super funny", ["Heat, The (2013)"]),
        ("I have not seen the new Beauty and the Beast", ["Beauty and the Beast (2017)"]),
        ("I loved the original Halloween", ["Halloween (1978)"]),
        # a capitalised everyday word right after a verb that names films
        ("Have you seen It", ["It (2017)"]),
        ("I Really Like It", []),  # unless every word is capitalised
        # names that go on are not shorter titles; kinds of film are not one-word titles
        ("directed by Frank Oz", []),
        ("I like Robert Downey Jr., he was great in Iron Man", ["Iron Man (2008)"]),
        ("I like monster movies", []),
        ("it is like 3 hours long", []),
        ("a romantic comedy with Julia", []),  # a person ("Julia Roberts"), not "Julia (1977)"
        # everyday words are not titles, whatever their case
        ("I'd like to get out tonight", []),
        ("lol", []),
        ("3", []),
    ],
)
def test_titles_as_people_write_them(movielens: Understander, text: str, titles: list[str]) -> None:
    assert _mentioned(movielens, text) == titles


def test_a_sequel_the_catalog_lacks_is_not_the_first_film(movielens: Understander) -> None:
    for text in ("I watched Frozen 2 in theaters", "like frozen 2"):
        understanding = movielens.understand(text)
        assert not understanding.of_type(MentionItem)
        assert understanding.clarify is not None and "Frozen 2" in understanding.clarify


def test_talk_is_not_asked_about_as_a_misspelt_title(movielens: Understander) -> None:
    for text in ("I've seen all of the Star Wars movies", "I like action movies like Mission: Impossible"):
        understanding = movielens.understand(text)
        assert understanding.clarify is None, (text, understanding.clarify)


@pytest.mark.parametrize(
    ("text", "unwanted"),
    [
        ("something like The Matrix but less violent", "violence"),
        ("nothing too violent please", "violence"),
        ("no gore", "violence"),
        ("less romance please", "Romance"),
        ("less childish please", "Children"),
    ],
)
def test_soft_negatives(movielens: Understander, text: str, unwanted: str) -> None:
    informs = [a for a in movielens.understand(text).acts if isinstance(a, InformReply)]
    names = [movielens.catalog.attributes[i].name for i in informs[0].unwanted]
    assert names == [unwanted] and not informs[0].attributes


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("something for a family movie night", "Children"),  # not MovieLens's "family" tag
        ("something more recent", "2010s"),
    ],
)
def test_words_for_what_a_film_is(movielens: Understander, text: str, wanted: str) -> None:
    informs = [a for a in movielens.understand(text).acts if isinstance(a, InformReply)]
    assert [movielens.catalog.attributes[i].name for i in informs[0].attributes] == [wanted]


def test_more_after_less_is_wanted_again(lastfm: Understander) -> None:
    inform = next(a for a in lastfm.understand("less pop, more jazz").acts if isinstance(a, InformReply))
    wanted = [lastfm.catalog.attributes[i].name.lower() for i in inform.attributes]
    unwanted = [lastfm.catalog.attributes[i].name.lower() for i in inform.unwanted]
    assert "jazz" in wanted and "pop" in unwanted


def test_an_answer_in_words_about_another_attribute(movielens: Understander) -> None:
    """ "I'd rather not have anything scary", said to "Action?": no horror, and no answer about
    action."""
    action = _attr(movielens, "genre:Action")
    acts = movielens.understand("I'd rather not have anything scary", Ask(action)).acts
    assert not any(isinstance(a, AnswerReply) for a in acts)
    assert _inform(acts).unwanted == (_attr(movielens, "genre:Horror"),)


def test_equally_close_titles_go_to_the_better_known_item(movielens: Understander) -> None:
    # "maks of zorro" is as close to "mask of zorro" (1998) as to "mark of zorro" (1940).
    mentions = [
        a for a in movielens.understand("something like maks of zorro").acts if isinstance(a, MentionItem)
    ]
    assert [movielens.catalog.items[m.item].title for m in mentions] == ["Mask of Zorro, The (1998)"]


def test_reactions(movielens: Understander) -> None:
    shown = Recommend(tuple(movielens.catalog.item_index(i) for i in (1, 2, 3)))
    first, second, third = shown.items
    assert movielens.understand("the second one", shown).acts == (AcceptReply(second),)
    assert movielens.understand("#3 looks good", shown).acts == (AcceptReply(third),)
    assert movielens.understand("none of these", shown).acts == (RejectReply(),)
    assert movielens.understand("seen the first one", shown).acts == (RejectItem(first, seen=True),)
    assert movielens.understand("more like the first", shown).acts == (MoreLike(first),)


GARBAGE = [
    "",
    " ",
    "\x00\x01\x02\x1b[31m",
    "<script>alert('x')</script>",
    "🎸" * 1000,
    "a" * 100_000,
    "no " * 30_000,
    "like " * 20_000,
    "&lt;b&gt;" * 1000,
    "\u202e\ufeff\u200b",
    "ok " + "x" * 99_990,
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_never_raises_and_is_fast(movielens: Understander, lastfm: Understander, text: str) -> None:
    for understander in (movielens, lastfm):
        for context in (None, Ask(0), Recommend((0, 1, 2))):
            started = time.perf_counter()
            result = understander.understand(text, context)
            assert time.perf_counter() - started < 0.2
            # Garbage is read as nothing (confidence 0, and the chat asks back), except that a
            # first word "no" or "ok" answers a pending question.
            answer = {"no": Answer.NO, "ok": Answer.YES}.get(text.split(" ")[0])
            if answer is not None and isinstance(context, Ask):
                assert result.acts == (AnswerReply(answer),) and result.confidence == 1.0, result
            else:
                assert result.acts == (Unknown(),) and result.confidence == 0.0 and result.clarify, result
            assert result.truncated == (len(text) > MAX_CHARS)


def test_nonsense_asks_back(movielens: Understander) -> None:
    result = movielens.understand("asdfgh qwerty")
    assert result.acts == (Unknown(),) and result.clarify


def test_typical_message_under_20_ms(movielens: Understander) -> None:
    texts = [
        "ok so my girlfriend and I want to watch something tonight, she likes romance and I like action",
        "something like toy stroy but from the 2000s, no musicals",
    ] * 50
    started = time.perf_counter()
    for text in texts:
        movielens.understand(text)
    assert (time.perf_counter() - started) / len(texts) < 0.020


def test_embedding_hook_maps_leftover_words(movielens: Understander) -> None:
    horror = _attr(movielens, "genre:Horror")

    def nearest(word: str, k: int) -> list[tuple[int, float]]:
        return [(horror, 0.9)] if word == "spine" else [(0, 0.1)]

    hooked = Understander(movielens.catalog, nearest_attributes=nearest)
    assert _inform(hooked.understand("something to chill my spine").acts).attributes == (horror,)
    assert _inform(hooked.understand("nothing that chills the spine").acts).unwanted == (horror,)


def test_generation(movielens: Understander) -> None:
    catalog = movielens.catalog
    rng = random.Random(0)
    comedy, horror = _attr(movielens, "genre:Comedy"), _attr(movielens, "genre:Horror")
    assert ask_attribute(catalog.attributes[comedy], rng).endswith("?")
    assert "1990s" in ask_attribute(catalog.attributes[_attr(movielens, "decade:1990s")], rng)
    assert acknowledge(catalog, [comedy], [horror], random.Random(1)).endswith("comedy, not horror.")
    listing = present(catalog, [0, 1], rng)
    assert "1. Toy Story (1995)" in listing and "http" not in listing
    assert clarify(rng, "Did you mean X?") == "Did you mean X?"
    assert [ask_attribute(catalog.attributes[comedy], random.Random(7)) for _ in range(2)] == [
        ask_attribute(catalog.attributes[comedy], random.Random(7))
    ] * 2


def test_lexicon_is_frozen_and_complete() -> None:
    assert load_lexicon() is LEXICON
    assert isinstance(LEXICON.stopwords, frozenset) and ("of", "course") in LEXICON.yes_phrases
    assert LEXICON.item_cues[0] == ("similar", "to")  # order matters: the first cue that matches wins
    with pytest.raises(TypeError):
        LEXICON.synonyms["scary"] = ("comedy",)  # type: ignore[index]
    with pytest.raises(ValueError, match="missing tables"):
        parse_lexicon({"stopwords": []})


def test_title_guard_reads_an_ampersand_as_and_or_nothing() -> None:
    guard = TitleGuard("Simon & Garfunkel")
    assert guard.leaks("I love Simon and Garfunkel") and guard.leaks("simon garfunkel")
    assert guard.leaks("simon&garfunkel") and not guard.leaks("simon says")


def _title(understander: Understander, item: int) -> str:
    return understander.catalog.items[item].title


@pytest.mark.parametrize(
    "text, title",
    [
        ("I loved Frozen (2010)", "Frozen (2010)"),  # the year typed after the title chooses
        ("like frozen 2010", "Frozen (2010)"),
        ("frozen", "Frozen (2013)"),  # a bare title: by far the best-known film of it
        ("I loved heat", "Heat (1995)"),
    ],
)
def test_a_year_or_popularity_chooses_among_films_of_one_title(
    movielens: Understander, text: str, title: str
) -> None:
    understanding = movielens.understand(text)
    assert [_title(movielens, a.item) for a in understanding.of_type(MentionItem)] == [title]
    # The year chose a film; it is not also read as a decade.
    assert not understanding.of_type(InformReply)


def test_films_of_one_title_about_equally_known_are_asked_back(movielens: Understander) -> None:
    understanding = movielens.understand("something like King Kong")
    offered = [_title(movielens, item) for item in understanding.choices]
    assert offered == ["King Kong (1933)", "King Kong (2005)"] and understanding.choices_liked
    assert understanding.clarify == "Did you mean King Kong (1933) or King Kong (2005)?"
    assert not understanding.of_type(MentionItem)  # asked, not guessed
    assert not movielens.understand("nothing like King Kong").choices_liked
    # An unsure typo offers its one guess as a button too.
    fuzzy = movielens.understand("something like frest gmp")
    assert fuzzy.clarify == "Did you mean Forrest Gump (1994)?"
    assert [_title(movielens, item) for item in fuzzy.choices] == ["Forrest Gump (1994)"]
