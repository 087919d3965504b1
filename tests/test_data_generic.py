"""The generic catalog format: loading, validation that reports every problem, and the validator."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from crs.data import DataError, load_dataset
from crs.data.generic import load_generic, validate_generic
from crs.data.location import resolve_data_dir
from crs.data.validate import format_report, validate_path

DOC = Path(__file__).resolve().parents[1] / "docs" / "generic-format.md"


def _write(
    folder: Path, items: Sequence[object] | str, interactions: str | None = None, users: str | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = items if isinstance(items, str) else "".join(json.dumps(item) + "\n" for item in items)
    (folder / "items.jsonl").write_text(text, encoding="utf-8")
    if interactions is not None:
        (folder / "interactions.csv").write_text(interactions, encoding="utf-8")
    if users is not None:
        (folder / "users.jsonl").write_text(users, encoding="utf-8")
    return folder


GOOD_ITEMS: list[object] = [
    {"id": 1, "title": "Toy Story", "attributes": {"genre": ["Animation", "Comedy"], "decade": ["1990s"]}},
    {"id": "tt0113497", "title": "Jumanji", "attributes": ["adventure", "1990s"], "facts": {"year": 1995}},
    {"id": 3, "title": "Heat", "text": "Cops and robbers."},
]


def test_a_small_catalog_loads(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "films",
        GOOD_ITEMS,
        "user_id,item_id,split\nu1,1,train\nu1,tt0113497,valid\nu2,3,\nu2,1,test\nu1,1,train\n",
        '{"id": "u1", "friends": ["u2"]}\n\n{"id": 7}\n',
    )
    assert validate_generic(folder) == []
    dataset = load_generic(folder)
    catalog = dataset.catalog
    assert dataset.name == "films"
    assert [item.id for item in catalog.items] == [1, "tt0113497", 3]  # ids keep their JSON type
    assert [(a.id, a.name, a.group) for a in catalog.attributes] == [
        ("genre:Animation", "Animation", "genre"),
        ("genre:Comedy", "Comedy", "genre"),
        ("decade:1990s", "1990s", "decade"),
        ("adventure", "adventure", "tag"),
        ("1990s", "1990s", "tag"),
    ]
    assert catalog.items[0].attributes == (0, 1, 2) and catalog.items[2].attributes == ()
    assert catalog.items[1].facts == (("year", "1995"),)
    assert catalog.items[2].facts == (("text", "Cops and robbers."),)
    assert dataset.split("train").by_user == {"u1": (0,), "u2": (2,)}  # the repeated row counts once
    assert dataset.split("valid").by_user == {"u1": (1,)}
    assert dataset.split("test").by_user == {"u2": (0,)}
    assert dataset.users["u1"].friends == ("u2",)
    assert set(dataset.users) == {"u1", "7", "u2"}
    assert load_dataset(str(folder)).catalog.n_items == 3


def test_without_interactions_the_train_split_is_empty(tmp_path: Path) -> None:
    dataset = load_generic(_write(tmp_path / "c", GOOD_ITEMS))
    assert list(dataset.splits) == ["train"] and dataset.train.pairs() == []
    assert dict(dataset.users) == {}


def test_a_two_column_interactions_file_is_all_train(tmp_path: Path) -> None:
    dataset = load_generic(_write(tmp_path / "c", GOOD_ITEMS, "user_id,item_id\nu1,3\nu1,1\n"))
    assert list(dataset.splits) == ["train"] and dataset.train.pairs() == [("u1", 2), ("u1", 0)]


BROKEN_ITEMS = "\n".join(
    [
        '{"id": 1, "title": "One", "attributes": ["a"]}',  # 1: fine
        '{"id": 2, "title": "Two", "attributes": ["a"]',  # 2: bad JSON
        '{"id": 1, "title": "Again"}',  # 3: duplicate id
        '{"id": 4, "attributes": ["b"]}',  # 4: missing title
        "",  # 5: blank, ignored
        '{"id": 5, "title": "Five", "atributes": ["b"]}',  # 6: misspelt key
        '{"id": "1", "title": "Text one"}',  # 7: the same id written as text
        '{"id": 8, "title": "Eight", "attributes": "b"}',  # 8: attributes not a list
        "[1, 2]",  # 9: not an object
    ]
)
BROKEN_INTERACTIONS = "user_id,item_id,split\nu1,1,train\nu1,99,train\nu2,1,later\nu3,4,train\nu1,1,test\n"


def test_validate_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "broken", BROKEN_ITEMS, BROKEN_INTERACTIONS, '{"id": "u1", "friends": ["nobody"]}\n'
    )
    problems = validate_generic(folder)
    found = {(problem.path.name, problem.line) for problem in problems}
    assert found == {
        ("items.jsonl", 2),
        ("items.jsonl", 3),
        ("items.jsonl", 4),
        ("items.jsonl", 6),
        ("items.jsonl", 7),
        ("items.jsonl", 8),
        ("items.jsonl", 9),
        ("interactions.csv", 3),  # unknown item 99
        ("interactions.csv", 4),  # unknown split
        ("interactions.csv", 6),  # the train pair again in test
        ("users.jsonl", 1),  # unknown friend
    }
    # Item 4 has its own problem (no title); its interaction on line 5 is not reported again.
    messages = {(problem.path.name, problem.line): problem.message for problem in problems}
    assert messages[("items.jsonl", 2)].startswith("not valid JSON")
    assert "duplicate id 1 (first used on line 1)" in messages[("items.jsonl", 3)]
    assert messages[("items.jsonl", 4)] == 'missing "title"'
    assert "atributes" in messages[("items.jsonl", 6)]
    assert "duplicate id '1'" in messages[("items.jsonl", 7)]
    assert "unknown item_id '99'" in messages[("interactions.csv", 3)]
    assert "unknown split 'later'" in messages[("interactions.csv", 4)]
    assert "'nobody'" in messages[("users.jsonl", 1)]


def test_load_raises_listing_the_first_problems(tmp_path: Path) -> None:
    folder = _write(tmp_path / "broken", BROKEN_ITEMS, BROKEN_INTERACTIONS)
    with pytest.raises(DataError) as caught:
        load_generic(folder)
    message = str(caught.value)
    assert caught.value.path == folder
    assert "10 problems" in message
    assert "items.jsonl, line 2: not valid JSON" in message
    assert "... and 5 more; run `crs data validate" in message
    with pytest.raises(DataError, match="10 problems"):
        load_dataset(str(folder))


@pytest.mark.parametrize(
    ("interactions", "message"),
    [
        ("user,item\nu1,1\n", "line 1: expected the header user_id,item_id[,split], found user,item"),
        ("", "line 1: expected the header user_id,item_id[,split], found an empty file"),
        ("user_id,item_id\nu1,1,train\n", "line 2: expected 2 fields (user_id,item_id), found 3"),
        ("user_id,item_id\n,1\n", "line 2: empty user_id"),
    ],
)
def test_interaction_file_problems(tmp_path: Path, interactions: str, message: str) -> None:
    problems = validate_generic(_write(tmp_path / "c", GOOD_ITEMS, interactions))
    [problem] = problems
    assert problem.path.name == "interactions.csv"
    assert str(problem).split("interactions.csv, ", 1)[1].startswith(message)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"id": True, "title": "x"}, '"id" must be an integer or a non-empty string'),
        ({"id": 1.5, "title": "x"}, '"id" must be an integer or a non-empty string'),
        ({"title": "x"}, 'missing "id"'),
        ({"id": 1, "title": "  "}, '"title" must be a non-empty string'),
        ({"id": 1, "title": "x", "attributes": ["a", ""]}, "must hold non-empty strings"),
        (
            {"id": 1, "title": "x", "attributes": {"genre": "Drama"}},
            "\"attributes\" group 'genre' must be a list",
        ),
        ({"id": 1, "title": "x", "facts": {"year": [1995]}}, "fact 'year' must be a string or a number"),
        ({"id": 1, "title": "x", "text": 3}, '"text" must be a string'),
    ],
)
def test_item_problems(tmp_path: Path, item: dict[str, object], message: str) -> None:
    problems = validate_generic(_write(tmp_path / "c", [item]))
    assert problems[0].line == 1 and message in problems[0].message


def test_an_attribute_id_means_one_thing(tmp_path: Path) -> None:
    items = [
        {"id": 1, "title": "x", "attributes": {"genre": ["Drama"]}},
        {"id": 2, "title": "y", "attributes": ["genre:Drama"]},
    ]
    [problem] = validate_generic(_write(tmp_path / "c", items))
    assert problem.line == 2 and "'genre:Drama'" in problem.message and "line 1" in problem.message


def test_missing_or_empty_items(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    [problem] = validate_generic(tmp_path / "empty")
    assert problem.path == tmp_path / "empty" / "items.jsonl" and "missing file" in problem.message
    [problem] = validate_generic(_write(tmp_path / "blank", "\n\n"))
    assert "no items" in problem.message
    [problem] = validate_generic(tmp_path / "nowhere")
    assert "not a folder" in problem.message
    with pytest.raises(DataError, match="no catalog folder"):
        load_generic(tmp_path / "nowhere")


def test_the_documented_example_loads(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    files = re.findall(r"`films/(\S+)`:\n\n```\w*\n(.*?)```", text, re.S)
    assert [name for name, _ in files] == ["items.jsonl", "interactions.csv", "users.jsonl"]
    folder = tmp_path / "films"
    folder.mkdir()
    for name, body in files:
        (folder / name).write_text(body, encoding="utf-8")
    dataset = load_generic(folder)
    assert dataset.catalog.n_items == 3 and dataset.catalog.n_attributes == 7
    assert dataset.split("train").by_user == {"alice": (0,), "bob": (1,)}
    assert dataset.split("test").by_user == {"bob": (0,)}


# --- the validator behind `crs data validate` ---------------------------------------------------


def test_validate_path_on_a_folder(tmp_path: Path) -> None:
    good = _write(tmp_path / "good", GOOD_ITEMS)
    assert validate_path(str(good), None) == []
    assert format_report([], str(good)) == f"{good}: no problems found"
    broken = _write(tmp_path / "broken", BROKEN_ITEMS)
    problems = validate_path(str(broken), None)
    report = format_report(problems, str(broken))
    assert report.splitlines()[0] == f"{broken}: 7 problems found"
    assert "  items.jsonl, line 3: duplicate id 1" in report


def test_validate_path_on_registered_names(tmp_path: Path) -> None:
    data_dir = resolve_data_dir()
    assert validate_path("movielens", str(data_dir)) == []
    [problem] = validate_path("movielens", str(tmp_path))
    assert "not found" in problem.message
    [problem] = validate_path(str(tmp_path / "nothing-here"), None)
    assert "neither a folder nor a registered dataset" in problem.message


def test_files_that_are_not_files_or_cannot_be_read_are_problems(tmp_path: Path) -> None:
    folder = _write(tmp_path / "c", GOOD_ITEMS)
    (folder / "interactions.csv").mkdir()  # a folder where a file belongs
    (folder / "users.jsonl").symlink_to(folder / "users.jsonl")  # a link to itself
    messages = {p.path.name: p.message for p in validate_generic(folder)}
    assert messages == {
        "interactions.csv": "is a folder, not a file",
        "users.jsonl": "is a link that leads nowhere (or to itself)",
    }
    nested = "[" * 100_000 + "]" * 100_000
    huge = '{"id": ' + "9" * 5000 + ', "title": "x", "attributes": ["a"]}'
    problems = validate_generic(_write(tmp_path / "d", f"{nested}\n{huge}\n"))
    assert [(p.line, p.message.split(":")[0]) for p in problems[:2]] == [
        (1, "JSON nested too deeply to read"),
        (2, "JSON that cannot be read"),
    ]


def test_a_catalog_without_any_attribute_is_refused(tmp_path: Path) -> None:
    items = [{"id": 1, "title": "x"}, {"id": 2, "title": "y"}]
    [problem] = validate_generic(_write(tmp_path / "c", items))
    assert 'no item has "attributes"' in problem.message


def test_numbers_beyond_64_bits_read_as_json_reads_them(tmp_path: Path) -> None:
    # The quick reading (orjson) makes floats of such integers; the loader must read them as json.
    big = 2**64
    items = (
        f'{{"id": {big}, "title": "Big", "attributes": ["a"], "facts": {{"n": {big}, "x": 1e19}}}}\n'
        f'{{"id": 2, "title": "Small", "attributes": ["a"], "facts": {{"n": -{big}, "half": 0.5}}}}\n'
    )
    folder = _write(
        tmp_path / "c", items, f"user_id,item_id\n{big},{big}\n", f'{{"id": {big}, "friends": []}}\n'
    )
    assert validate_generic(folder) == []
    dataset = load_generic(folder)
    first, second = dataset.catalog.items
    assert first.id == big and first.facts == (("n", str(big)), ("x", "1e+19"))
    assert second.facts == (("n", f"-{big}"), ("half", "0.5"))
    assert dataset.train.by_user == {str(big): (0,)} and str(big) in dataset.users
