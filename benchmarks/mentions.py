"""Reading what people really typed, on words nobody here wrote, against the MovieLens catalog:

1. INSPIRED dev (Hayati et al., 2020): the movies, genres and people (actors, directors) seekers
   name, against the annotators' tags (crs/data/inspired.py, crs/language/tagged.py); people are
   read against the directors and cast of the films ReDial's descriptions link to
   (crs/data/film_details.py, crs/language/people.py).
   The annotators' movie tags miss many titles and hold words that are none ("lol", "Oscar"), so
   movies are also scored against a second, careful reading of all 1,678 seeker utterances,
   tagged or not (benchmarks/data/inspired_dev_movies.jsonl: written by reading each utterance,
   without the reader's output, titles looked up in MovieLens's movies.csv); genres likewise
   (benchmarks/data/inspired_dev_genres.jsonl, MovieLens's 19 genre names).
2. ReDial (Li et al., 2018): every movie a seeker names in its 1,401 released dialogues, with each
   `@id` written as its title without the year, as people type it ("I loved Superbad"); and
   whether the seeker liked it (their own answer, `initiatorQuestions`), read right.

Both are split in halves by a hash of the dialogue id: "tune" may be looked at while changing
the rules, "heldout" may not; both are reported. `--errors tune` prints INSPIRED's tune-part
misses and false finds (there is deliberately no way to print the held-out ones).

Run: .venv/bin/python benchmarks/mentions.py [--data-dir DIR] [--errors tune]
Writes benchmarks/results/mentions.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from crs.data import load_dataset
from crs.data.film_details import load_film_details
from crs.data.inspired import load_named_genres, load_named_movies, load_seeker_utterances
from crs.data.location import resolve_data_dir
from crs.data.redial import load_dialogues
from crs.evaluation.report import markdown_table
from crs.language import Understander
from crs.language.people import PeopleIndex
from crs.language.tagged import (
    score_named_genres,
    score_named_movies,
    score_people,
    score_redial_mentions,
    score_tagged,
)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = "movielens"
NAMED_MOVIES = ROOT / "benchmarks" / "data" / "inspired_dev_movies.jsonl"
NAMED_GENRES = ROOT / "benchmarks" / "data" / "inspired_dev_genres.jsonl"
PARTS = ("tune", "heldout", "all")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--errors", choices=("tune",), default=None, help="print INSPIRED's tune-part errors")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mentions.json"))
    args = parser.parse_args(argv)

    data_dir = resolve_data_dir(args.data_dir)
    dataset = load_dataset(CATALOG, data_dir)
    # As the chat reads: a bare title means the best-known film of that title.
    understander = Understander(dataset.catalog, popularity=dataset.popularity)

    started = time.perf_counter()
    utterances = load_seeker_utterances(data_dir)
    inspired = score_tagged(understander, utterances)
    inspired_s = time.perf_counter() - started
    print("INSPIRED dev, seeker utterances with tags")
    headers = ["part", "utterances", "movie P", "movie R", "R asking back", "movies"]
    headers += ["genre P", "genre R", "genres"]
    headers.append("tags outside the catalog (movies / genres)")
    rows = [
        [
            part,
            str(r.utterances),
            f"{r.movies.precision:.3f}",
            f"{r.movies.recall:.3f}",
            f"{r.movie_recall_asking_back:.3f}",
            str(r.movies.support),
            f"{r.genres.precision:.3f}",
            f"{r.genres.recall:.3f}",
            str(r.genres.support),
            f"{r.movies_outside_catalog} / {r.genres_outside_catalog}",
        ]
        for part, r in ((part, inspired[part]) for part in PARTS)
    ]
    print(markdown_table(headers, rows))

    named = score_named_movies(understander, utterances, load_named_movies(NAMED_MOVIES))
    print("\nINSPIRED dev, every seeker utterance, movies against the careful re-reading")
    headers = [
        "part",
        "utterances",
        "movie P",
        "movie R",
        "R asking back",
        "movies",
        "found in series/unsure",
    ]
    headers.append("named outside the catalog")
    rows = [
        [
            part,
            str(r.utterances),
            f"{r.score.precision:.3f}",
            f"{r.score.recall:.3f}",
            f"{r.recall_asking_back:.3f}",
            str(r.score.support),
            str(r.neutral),
            str(r.outside_catalog),
        ]
        for part, r in ((part, named[part]) for part in PARTS)
    ]
    print(markdown_table(headers, rows))

    named_genres = score_named_genres(understander, utterances, load_named_genres(NAMED_GENRES))
    print("\nINSPIRED dev, every seeker utterance, genres (wanted or not) against the careful re-reading")
    headers = ["part", "utterances", "genre P", "genre R", "genres", "found among unsure"]
    rows = [
        [
            part,
            str(r.utterances),
            f"{r.score.precision:.3f}",
            f"{r.score.recall:.3f}",
            str(r.score.support),
            str(r.neutral),
        ]
        for part, r in ((part, named_genres[part]) for part in PARTS)
    ]
    print(markdown_table(headers, rows))

    details = load_film_details(data_dir, dataset.catalog)
    people = score_people(PeopleIndex.for_catalog(details, dataset.catalog), utterances)
    print(f"\nINSPIRED dev, actors and directors named (films with details: {details.coverage:,})")
    headers = ["part", "utterances", "people P", "people R", "people", "tagged people outside the catalog"]
    rows = [
        [
            part,
            str(r.utterances),
            f"{r.people.precision:.3f}",
            f"{r.people.recall:.3f}",
            str(r.people.support),
            str(r.outside_catalog),
        ]
        for part, r in ((part, people[part]) for part in PARTS)
    ]
    print(markdown_table(headers, rows))

    started = time.perf_counter()
    redial = score_redial_mentions(understander, load_dialogues(data_dir, "train"))
    redial_s = time.perf_counter() - started
    print("\nReDial, seekers' messages naming catalog movies (titles without the year)")
    headers = ["part", "messages", "mention P", "mention R", "R asking back", "mentions"]
    headers.append("liked read right (n)")
    headers.append("mentions outside the catalog")
    rows = [
        [
            part,
            str(m.messages),
            f"{m.mentions.precision:.3f}",
            f"{m.mentions.recall:.3f}",
            f"{m.recall_asking_back:.3f}",
            str(m.mentions.support),
            f"{m.polarity_accuracy:.3f} ({m.polarity_known})",
            str(m.mentions_outside_catalog),
        ]
        for part, m in ((part, redial[part]) for part in PARTS)
    ]
    print(markdown_table(headers, rows))
    n_inspired, n_redial = inspired["all"].utterances, redial["all"].messages
    print(
        f"\n{n_inspired + n_redial} messages read in {inspired_s + redial_s:.1f} s "
        f"({1000 * (inspired_s + redial_s) / max(1, n_inspired + n_redial):.2f} ms each)"
    )
    if args.errors == "tune":
        print("\nINSPIRED errors in the tune part:")
        for error in inspired["tune"].errors:
            print(json.dumps(error, ensure_ascii=False))
        print("\nINSPIRED errors in the tune part, against the re-reading:")
        for error in (*named["tune"].errors, *named_genres["tune"].errors):
            print(json.dumps(error, ensure_ascii=False))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "catalog": CATALOG,
        "inspired": {part: inspired[part].as_dict() for part in PARTS},
        "inspired_reread": {part: named[part].as_dict() for part in PARTS},
        "inspired_genres_reread": {part: named_genres[part].as_dict() for part in PARTS},
        "redial": {part: redial[part].as_dict() for part in PARTS},
        "people": {part: people[part].as_dict() for part in PARTS},
        "films_with_details": details.coverage,
        "ms_per_message": round(1000 * (inspired_s + redial_s) / max(1, n_inspired + n_redial), 3),
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
