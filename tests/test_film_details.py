"""Who made a film and who is in it: ReDial's descriptions linked to the MovieLens catalog, and the
people a message names ("with Jim Carrey", "by Jordan Peele"), scored on INSPIRED's tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from crs.data import Dataset
from crs.data.errors import DataError
from crs.data.film_details import CatalogDetails, link_details, load_film_details, read_details
from crs.data.inspired import load_seeker_utterances
from crs.language.people import PeopleIndex
from crs.language.tagged import score_people

# Measured with benchmarks/mentions.py (held-out half); floors a little below.
INSPIRED_PEOPLE_RECALL = 0.90
INSPIRED_PEOPLE_PRECISION = 0.85


@pytest.fixture(scope="module")
def details(movielens_dataset: Dataset, data_dir: Path) -> CatalogDetails:
    return load_film_details(data_dir, movielens_dataset.catalog)


@pytest.fixture(scope="module")
def people(details: CatalogDetails, movielens_dataset: Dataset) -> PeopleIndex:
    return PeopleIndex.for_catalog(details, movielens_dataset.catalog)


def _index(dataset: Dataset, title: str) -> int:
    return next(item.index for item in dataset.catalog.items if item.title == title)


def test_most_films_people_know_get_their_details(
    details: CatalogDetails, movielens_dataset: Dataset
) -> None:
    assert details.lines == 6176 and details.coverage > 3500
    popular = movielens_dataset.popularity.argsort()[::-1][:500]
    assert sum(details.get(int(i)) is not None for i in popular) >= 400


@pytest.mark.parametrize(
    "title, director, actor",
    [
        ("Matrix, The (1999)", "Lana Wachowski", "Keanu Reeves"),
        # Namesakes: each film gets its own line, by the year its place in the file implies.
        ("Heat (1995)", "Michael Mann", "Al Pacino"),
        ("Heat, The (2013)", "Paul Feig", "Sandra Bullock"),
        ("King Kong (2005)", "Peter Jackson", "Naomi Watts"),
        ("King Kong (1933)", "Merian C. Cooper", "Fay Wray"),
        ("Fugitive, The (1993)", "Andrew Davis", "Harrison Ford"),
        ("Frozen (2013)", "Chris Buck", "Kristen Bell"),
        # A short name links too: "Star Wars" is the first film's line.
        ("Star Wars: Episode IV - A New Hope (1977)", "George Lucas", "Mark Hamill"),
    ],
)
def test_films_are_linked_to_their_own_description(
    details: CatalogDetails, movielens_dataset: Dataset, title: str, director: str, actor: str
) -> None:
    film = details.get(_index(movielens_dataset, title))
    assert film is not None and director in film.directors and actor in film.cast and film.plot


def test_a_namesake_without_its_own_line_gets_none(
    details: CatalogDetails, movielens_dataset: Dataset
) -> None:
    # One "the fugitive" line, dated to the 1990s: the 1947 film must not get Harrison Ford.
    assert details.get(_index(movielens_dataset, "Fugitive, The (1947)")) is None


def test_bad_details_files_are_refused_with_the_line(tmp_path: Path, movielens_dataset: Dataset) -> None:
    with pytest.raises(DataError, match="movie_text.jsonl"):
        read_details(tmp_path / "movie_text.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "heat", "cast": [], "director": [], "genres": [], "plot": ""}\n{oops\n')
    with pytest.raises(DataError, match="line 2"):
        read_details(bad)
    bad.write_text('{"title": "heat", "cast": "Al Pacino"}\n')
    with pytest.raises(DataError, match="line 1: 'cast'"):
        read_details(bad)
    one = tmp_path / "one.jsonl"
    one.write_text(
        '{"title": "the matrix", "cast": ["Keanu Reeves"], "director": [], "genres": [], "plot": "x"}\n'
    )
    linked = link_details(movielens_dataset.catalog, read_details(one))
    assert [movielens_dataset.catalog.items[i].title for i in linked] == ["Matrix, The (1999)"]


@pytest.mark.parametrize(
    "text, named",
    [
        ("something with jim carrey", [("Jim Carrey", True)]),
        ("a film by Jordan Peele", [("Jordan Peele", True)]),
        ("I like Spielberg movies", [("Steven Spielberg", True)]),
        ("something directed by nolan", [("Christopher Nolan", True)]),
        ("with Tom Hanks but not Meg Ryan", [("Tom Hanks", True), ("Meg Ryan", False)]),
        ("nothing with adam sandler", [("Adam Sandler", False)]),
        # Capitalised runs are titles and places, not surnames.
        ("I loved Saving Private Ryan and Toy Story", []),
        ("we watched it in New York", []),
        ("I like when he and the Rock act together", []),
        # A first name alone after a cue, when one person of that name has by far the most films.
        ("a romantic comedy with Julia", [("Julia Roberts", True)]),
        ("anything starring Keanu", [("Keanu Reeves", True)]),
        ("something with Tom", []),  # Hanks, Cruise, Hardy...: nobody in particular
        ("Julia was great", []),  # no cue
    ],
)
def test_people_named_in_a_message(people: PeopleIndex, text: str, named: list[tuple[str, bool]]) -> None:
    assert [(person.name, wanted) for person, wanted in people.find(text)] == named


def test_people_people_name_are_found(people: PeopleIndex, data_dir: Path) -> None:
    report = score_people(people, load_seeker_utterances(data_dir))
    held_out = report["heldout"].people
    assert held_out.recall >= INSPIRED_PEOPLE_RECALL and held_out.precision >= INSPIRED_PEOPLE_PRECISION
    assert report["all"].utterances == report["tune"].utterances + report["heldout"].utterances
