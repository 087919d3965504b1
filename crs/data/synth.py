"""Synthetic catalogs in the generic format, from a few thousand to millions of items.

`synthesize(folder, SynthSpec(items=..., attributes=..., users=..., seed=...))` writes
`items.jsonl`, `interactions.csv` and `users.jsonl` (docs/generic-format.md) plus `synth.json`
(the spec and the counts written), which `crs data validate` accepts and `crs evaluate --dataset
FOLDER --split valid` evaluates. It is what `crs data synth` runs. The same spec writes the same
bytes: every random draw comes from `numpy.random.default_rng([seed, stage, chunk])`, with fixed
chunk sizes. The work is vectorised numpy over chunks of items and users written as they are made,
so memory holds the item-attribute pairs (three numbers a pair) and one chunk of text, never the
whole catalog as Python objects.

Structure, chosen to look like LastFM* and MovieLens where it matters to a conversation:

Attributes, in four groups (ids "group:value", as the format's object form gives them)
    - `genre`: up to 30 genre names ("Drama", "Comedy", ...), about one per 40 attributes; each
      item has 1 to 3 (mean 1.7), drawn Zipf-like (weight of the r-th genre ~ 1/r^0.8). The first
      drawn is the item's *primary genre*.
    - `decade`: "1930s" to "2020s", exactly one per item, recent decades more common (x1.35 a
      decade); the item's fact `year` lies in it.
    - `mood`: about one attribute in ten (at most 200), 0 to 2 per item, Zipf-like (1/r).
    - `tag`: the long tail, all remaining attributes; a geometric number per item (mean 7, at least
      one, at most half the tags), Zipf-like (1/r). Each tag has a home genre; 70 % of an item's tags
      are drawn among its primary genre's tags, so attributes co-occur as real tags do.
    Mood and tag names are made-up pronounceable words ("kalo", "tumiza"), unique across groups.
    Every attribute of the spec is carried by at least one item (one *founder* item drawn per
    attribute), so the catalog has exactly `attributes` attributes, and every item has at least
    two (a genre and a decade): a target without attributes could not be talked about.

Items
    Ids are the integers 0..items-1 in file order; titles are unique made-up two-word names with
    the year ("Kalo Tumi (1994)"). Popularity follows a power law: the item of popularity rank r
    (a random permutation of the items) has weight 1/r^0.9. Most interactions go to a few items,
    and many items have none, as in real catalogs.

Users, tastes and friends
    Users are "u0".."u{users-1}" (default: items / 10, at least 20). Each user has a *seed item*
    drawn by popularity and two favourite attributes drawn among the seed item's moods and tags
    (genres and decades are too broad to be a taste). A user draws a geometric number of items, at
    least 5 (mean `interactions_per_user`, at most 200; repeats are dropped): each one, with
    probability 0.9, an item carrying one of the favourites (drawn by popularity among those
    items), else an item drawn by popularity from the whole catalog. So a user's items share
    attributes: two training items of one user have 1.3-1.8 times the attribute overlap (Jaccard)
    of two training items of anyone (more with more attributes), 1.8 on LastFM* and MovieLens.
    Each user starts a Poisson number of friendships (mean `friends_per_user`), 80 % of them with a
    user who shares one of the user's favourites (or, when nobody does, a user at most 5 places
    away in the users ordered by the seed item's primary genre, then the first favourite), the
    rest with anyone. Friendships are mutual (users.jsonl lists both sides), so users have about
    twice that many friends, whose training histories are 1.2-1.4 times as alike (cosine of
    attribute counts) as strangers' (1.3 on LastFM*).

Splits (as MovieLens in crs/data/movielens.py)
    Each user's items, in a random order, are split: the first max(1, floor(0.70 n)) to `train`,
    the next min(n - n_train, round_half_up(0.15 n)) to `valid`, the rest to `test`. Every user
    has training history, so every valid and test target has some. interactions.csv lists each
    user's rows together, train then valid then test.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crs.data.generic import INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE
from crs.progress import Progress, report

SPEC_FILE = "synth.json"
CATALOG_FILES = (ITEMS_FILE, INTERACTIONS_FILE, USERS_FILE, SPEC_FILE)

MIN_ITEMS = 10  # one founder item per decade
MAX_ITEMS = 10_000_000
MIN_ATTRIBUTES = 20  # 10 decades, at least 4 genres, 2 moods and 4 tags
MAX_ATTRIBUTES = 1_000_000
MIN_USERS = 2  # a friend is another user
MAX_USERS = 10_000_000
DEFAULT_MIN_USERS = 20

ITEM_CHUNK = 65_536  # items made and written at a time (fixed: the bytes depend on it)
USER_CHUNK = 16_384

GENRES = (
    "Drama", "Comedy", "Thriller", "Action", "Romance", "Adventure", "Crime", "Horror",
    "Science Fiction", "Fantasy", "Mystery", "Animation", "Documentary", "Family", "War",
    "Musical", "Western", "History", "Biography", "Sport", "Music", "Film Noir", "Superhero",
    "Martial Arts", "Disaster", "Satire", "Road Movie", "Coming of Age", "Heist", "Spy",
)  # fmt: skip
DECADES = tuple(f"{1930 + 10 * d}s" for d in range(10))
LAST_YEAR = 2026
TITLE_STRIDE = 7_919  # a prime, so it is prime to 4,900**2 (the number of two-word titles)

GENRE_EXPONENT = 0.8
MOOD_EXPONENT = 1.0
TAG_EXPONENT = 1.0
POPULARITY_EXPONENT = 0.9
DECADE_GROWTH = 1.35
EXTRA_GENRE_CHANCE = 0.35  # each of two more genres
MOOD_CHANCE = 0.5  # each of two moods
MEAN_TAGS = 7
HOME_GENRE_TAG_SHARE = 0.7
FAVOURITES = 2
FAVOURITE_SHARE = 0.9
FRIEND_SAME_TASTE_SHARE = 0.8
FRIEND_REACH = 5  # places in the users' taste order
MIN_INTERACTIONS = 5
MAX_DRAWN_INTERACTIONS = 200
TRAIN_SHARE, VALID_SHARE = 0.70, 0.15

# Stages of the random streams: default_rng([seed, stage, chunk]).
_ITEMS_SETUP, _ITEMS_CHUNK, _USERS_SETUP, _USERS_CHUNK = 0, 1, 2, 3

Ints = npt.NDArray[np.integer[Any]]
Floats = npt.NDArray[np.floating[Any]]


class SynthSpecError(ValueError):
    """A value of a `SynthSpec` out of range; `field` names it (the CLI turns it into its flag)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field} {reason}")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; `users` None means items / 10 (at least 20). Raises SynthSpecError (a
    ValueError) naming the first value out of range."""

    items: int = 10_000
    attributes: int = 1_000
    users: int | None = None
    seed: int = 0
    interactions_per_user: int = 20
    friends_per_user: int = 3

    def __post_init__(self) -> None:
        _check_range("items", self.items, MIN_ITEMS, MAX_ITEMS)
        _check_range("attributes", self.attributes, MIN_ATTRIBUTES, MAX_ATTRIBUTES)
        if self.users is not None:
            _check_range("users", self.users, MIN_USERS, MAX_USERS)
        _check_range("seed", self.seed, 0, 2**63 - 1)
        _check_range("interactions_per_user", self.interactions_per_user, MIN_INTERACTIONS, 100)
        _check_range("friends_per_user", self.friends_per_user, 0, 100)

    @property
    def n_users(self) -> int:
        return self.users if self.users is not None else max(DEFAULT_MIN_USERS, self.items // 10)


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SynthSpecError(name, f"must be an integer from {low:,} to {high:,}, got {value!r}")


@dataclass(frozen=True)
class SynthSummary:
    """What was written: counts, file sizes in bytes, seconds taken."""

    folder: Path
    items: int
    attributes: int
    users: int
    interactions: dict[str, int]
    friendships: int  # mutual pairs
    bytes: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class _Groups:
    """Attribute layout: global attribute index ranges per group, in the order genre, decade,
    mood, tag (so sorting an item's attribute indices groups them)."""

    genres: int
    moods: int
    tags: int

    @property
    def starts(self) -> tuple[int, int, int, int, int]:
        genre, decade = 0, self.genres
        mood = decade + len(DECADES)
        tag = mood + self.moods
        return genre, decade, mood, tag, tag + self.tags

    @classmethod
    def of(cls, attributes: int) -> _Groups:
        genres = min(len(GENRES), max(4, attributes // 40))
        moods = max(2, min(200, attributes // 10))
        return cls(genres, moods, attributes - genres - len(DECADES) - moods)

    def names(self) -> list[str]:
        """Value names in attribute-index order; moods and tags are distinct made-up words."""
        made_up = [_word(k) for k in range(self.moods + self.tags)]
        return [*GENRES[: self.genres], *DECADES, *made_up]


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # uniquely decodable: no two concatenations meet


def _word(number: int) -> str:
    """The number as a bijective base-70 numeral in syllables: distinct numbers, distinct words."""
    base = len(_SYLLABLES)
    number += base  # skip one-syllable words: "ba" reads as a typo, "baka" as a word
    parts = []
    while True:
        parts.append(_SYLLABLES[number % base])
        number = number // base - 1
        if number < 0:
            break
    return "".join(reversed(parts))


def _zipf_cdf(count: int, exponent: float) -> Floats:
    weights = 1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw(cdf: Floats, uniforms: Floats) -> Ints:
    """Indices drawn from a cumulative distribution by inverse transform."""
    return np.minimum(np.searchsorted(cdf, uniforms, side="right"), len(cdf) - 1).astype(np.int64)


def _segment_keys(segments: Ints, weights: Floats, n_segments: int) -> Floats:
    """For entries sorted by segment: segment + the cumulative share of the entry's weight within
    its segment, in (segment, segment + 1]. `searchsorted(keys, s + u, "right")` with u uniform in
    [0, 1) then draws an entry of segment s in proportion to its weight, for all s at once."""
    totals = np.bincount(segments, weights=weights, minlength=n_segments)
    keys = np.cumsum(weights)
    # In place: at a million items these arrays hold ten million entries each.
    keys -= np.concatenate(([0.0], np.cumsum(totals)))[segments]
    keys /= totals[segments]
    np.minimum(keys, 1.0, out=keys)
    keys += segments
    return keys


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def synthesize(folder: Path, spec: SynthSpec, progress: Progress | None = None) -> SynthSummary:
    """Write a synthetic catalog of `spec` into `folder` (created; its catalog files replaced)."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    groups = _Groups.of(spec.attributes)
    items_made = _write_items(folder / ITEMS_FILE, spec, groups, progress)
    interactions, friendships, users = _write_users(folder, spec, groups, items_made, progress)
    sizes = {name: (folder / name).stat().st_size for name in (ITEMS_FILE, INTERACTIONS_FILE, USERS_FILE)}
    record = {
        "generator": "crs.data.synth",
        "spec": {**asdict(spec), "users": users},
        "counts": {
            "items": spec.items,
            "attributes": spec.attributes,
            "users": users,
            "interactions": interactions,
            "friendships": friendships,
            "attribute_groups": {
                "genre": groups.genres,
                "decade": len(DECADES),
                "mood": groups.moods,
                "tag": groups.tags,
            },
        },
    }
    (folder / SPEC_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return SynthSummary(
        folder=folder,
        items=spec.items,
        attributes=spec.attributes,
        users=users,
        interactions=interactions,
        friendships=friendships,
        bytes=sizes,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _ItemsMade:
    """What the users' stage needs from the items: item-attribute pairs sorted by item,
    popularity weights and primary genres."""

    pair_items: npt.NDArray[np.int32]
    pair_attributes: npt.NDArray[np.int32]
    popularity: Floats
    primary_genre: npt.NDArray[np.int16]


def _write_items(path: Path, spec: SynthSpec, groups: _Groups, progress: Progress | None) -> _ItemsMade:
    n, n_attributes = spec.items, spec.attributes
    genre_start, decade_start, mood_start, tag_start, _ = groups.starts
    setup = np.random.default_rng([spec.seed, _ITEMS_SETUP])
    rank = setup.permutation(n)
    popularity = 1.0 / (rank + 1.0) ** POPULARITY_EXPONENT
    # One founder item per attribute guarantees every attribute is used; decades get distinct
    # founders whose decade is overridden (an item has one decade).
    founders = setup.integers(0, n, size=n_attributes)
    decade_founders = setup.permutation(n)[: len(DECADES)]
    genre_cdf = _zipf_cdf(groups.genres, GENRE_EXPONENT)
    mood_cdf = _zipf_cdf(groups.moods, MOOD_EXPONENT)
    tag_cdf = _zipf_cdf(groups.tags, TAG_EXPONENT)
    decade_cdf = np.cumsum(DECADE_GROWTH ** np.arange(len(DECADES), dtype=np.float64))
    decade_cdf /= decade_cdf[-1]
    # Tags by home genre (tag t's home is t % genres), each genre's tags weighted by their Zipf weight.
    home = np.arange(groups.tags) % groups.genres
    tag_by_home = np.argsort(home, kind="stable")
    tag_weights = np.diff(np.concatenate(([0.0], tag_cdf)))
    home_keys = _segment_keys(home[tag_by_home], tag_weights[tag_by_home], groups.genres)
    genre_has_tags = np.bincount(home, minlength=groups.genres) > 0
    max_tags = max(1, groups.tags // 2)

    quoted = np.array([_quoted(name) for name in groups.names()], dtype=object)
    titles_words = [_word(k).capitalize() for k in range(len(_SYLLABLES) ** 2)]
    n_words = len(titles_words)
    chunks_pairs: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
    primary_genre = np.empty(n, dtype=np.int16)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for chunk, first in enumerate(range(0, n, ITEM_CHUNK)):
            last = min(n, first + ITEM_CHUNK)
            size = last - first
            rng = np.random.default_rng([spec.seed, _ITEMS_CHUNK, chunk])
            local = np.arange(size, dtype=np.int64)
            # Genres: a primary one and up to two more.
            primary = _draw(genre_cdf, rng.random(size))
            primary_genre[first:last] = primary
            extra = rng.binomial(2, EXTRA_GENRE_CHANCE, size)
            extra_items = np.repeat(local, extra)
            extra_genres = _draw(genre_cdf, rng.random(len(extra_items)))
            # Decade and year.
            decade = _draw(decade_cdf, rng.random(size))
            in_chunk = decade_founders[(decade_founders >= first) & (decade_founders < last)]
            decade[in_chunk - first] = np.flatnonzero((decade_founders >= first) & (decade_founders < last))
            span = np.where(decade == len(DECADES) - 1, LAST_YEAR - 2020 + 1, 10)
            year = 1930 + 10 * decade + (rng.random(size) * span).astype(np.int64)
            # Moods.
            moods = rng.binomial(2, MOOD_CHANCE, size)
            mood_items = np.repeat(local, moods)
            mood_values = _draw(mood_cdf, rng.random(len(mood_items)))
            # Tags: mostly among the primary genre's tags.
            tag_counts = np.minimum(rng.geometric(1.0 / MEAN_TAGS, size), max_tags)
            tag_items = np.repeat(local, tag_counts)
            uniforms = rng.random(len(tag_items))
            tag_genre = primary[tag_items]
            at_home = (rng.random(len(tag_items)) < HOME_GENRE_TAG_SHARE) & genre_has_tags[tag_genre]
            tag_values = _draw(tag_cdf, uniforms)
            home_positions = np.searchsorted(home_keys, tag_genre[at_home] + uniforms[at_home], side="right")
            tag_values[at_home] = tag_by_home[np.minimum(home_positions, groups.tags - 1)]
            # Founders of this chunk (decades handled above).
            founding = np.flatnonzero((founders >= first) & (founders < last))
            founding = founding[(founding < decade_start) | (founding >= mood_start)]
            codes = np.concatenate(
                (
                    local * n_attributes + genre_start + primary,
                    extra_items * n_attributes + genre_start + extra_genres,
                    local * n_attributes + decade_start + decade,
                    mood_items * n_attributes + mood_start + mood_values,
                    tag_items * n_attributes + tag_start + tag_values,
                    (founders[founding] - first) * n_attributes + founding,
                )
            )
            codes = np.unique(codes)  # sorted by item, then attribute (so by group); repeats gone
            pair_items = codes // n_attributes
            pair_attributes = codes % n_attributes
            chunks_pairs.append(((pair_items + first).astype(np.int32), pair_attributes.astype(np.int32)))
            # Where each item's groups begin among its sorted pairs.
            bounds = np.searchsorted(
                codes, (local[:, None] * n_attributes + np.array(groups.starts)[None, :]).ravel()
            ).reshape(size, 5)
            handle.write(
                _item_lines(
                    first,
                    bounds.tolist(),
                    quoted[pair_attributes].tolist(),
                    year.tolist(),
                    titles_words,
                    n_words,
                )
            )
            report(progress, "synthetic items", last, n, "item")
    pair_items_all = np.concatenate([items for items, _ in chunks_pairs])
    pair_attributes_all = np.concatenate([attributes for _, attributes in chunks_pairs])
    return _ItemsMade(pair_items_all, pair_attributes_all, popularity, primary_genre)


def _item_lines(
    first: int, bounds: list[list[int]], quoted: list[str], years: list[int], words: list[str], n_words: int
) -> str:
    lines = []
    for offset, ((genre, decade, mood, tag, end), year) in enumerate(zip(bounds, years, strict=True)):
        item = first + offset
        # Two words from the item number scrambled by a bijection of 0..n_words**2 - 1 (TITLE_STRIDE
        # is prime to it): distinct items, distinct titles, neighbours not alike.
        scrambled = item * TITLE_STRIDE % (n_words * n_words)
        title = f"{words[scrambled // n_words]} {words[scrambled % n_words]}"
        attributes = f'"genre": [{", ".join(quoted[genre:decade])}], "decade": [{quoted[decade]}]'
        if tag > mood:
            attributes += f', "mood": [{", ".join(quoted[mood:tag])}]'
        if end > tag:
            attributes += f', "tag": [{", ".join(quoted[tag:end])}]'
        lines.append(
            f'{{"id": {item}, "title": "{title} ({year})", "attributes": {{{attributes}}}, '
            f'"facts": {{"year": {year}}}}}\n'
        )
    return "".join(lines)


def _write_users(
    folder: Path, spec: SynthSpec, groups: _Groups, made: _ItemsMade, progress: Progress | None
) -> tuple[dict[str, int], int, int]:
    n_items, n_attributes, n_users = spec.items, spec.attributes, spec.n_users
    setup = np.random.default_rng([spec.seed, _USERS_SETUP])
    item_cdf = np.cumsum(made.popularity)
    item_cdf /= item_cdf[-1]
    item_pointers = np.searchsorted(made.pair_items, np.arange(n_items + 1))
    # Items of each attribute, drawn in proportion to popularity.
    by_attribute = np.argsort(made.pair_attributes, kind="stable")
    attribute_items = made.pair_items[by_attribute]
    attribute_keys = _segment_keys(
        made.pair_attributes[by_attribute], made.popularity[attribute_items], n_attributes
    )
    del by_attribute
    # Tastes: a seed item and favourite attributes among its moods and tags (every item has a tag),
    # which come after its decade: genres and decades are too broad to make a taste.
    _, decade_start, mood_start, _, _ = groups.starts
    decade_positions = np.flatnonzero(
        (made.pair_attributes >= decade_start) & (made.pair_attributes < mood_start)
    )
    seed_items = _draw(item_cdf, setup.random(n_users))
    starts = decade_positions[seed_items] + 1
    counts = item_pointers[seed_items + 1] - starts
    draws = setup.random((n_users, FAVOURITES))
    favourite_positions = starts[:, None] + (draws * counts[:, None]).astype(np.int64)
    favourites = made.pair_attributes[favourite_positions].astype(np.int64)
    # Users ordered by taste: the seed item's primary genre, then the first favourite.
    by_taste = np.lexsort((favourites[:, 0], made.primary_genre[seed_items]))
    friends_pointers, friends = _friendships(setup, favourites, by_taste, spec.friends_per_user)

    interactions = {"train": 0, "valid": 0, "test": 0}
    split_names = ("train", "valid", "test")
    user_names = [f"u{user}" for user in range(n_users)]
    with (
        (folder / INTERACTIONS_FILE).open("w", encoding="utf-8", newline="\n") as csv_handle,
        (folder / USERS_FILE).open("w", encoding="utf-8", newline="\n") as users_handle,
    ):
        csv_handle.write("user_id,item_id,split\n")
        for chunk, first in enumerate(range(0, n_users, USER_CHUNK)):
            last = min(n_users, first + USER_CHUNK)
            size = last - first
            rng = np.random.default_rng([spec.seed, _USERS_CHUNK, chunk])
            drawn = np.minimum(
                MIN_INTERACTIONS
                - 1
                + rng.geometric(1.0 / (spec.interactions_per_user - MIN_INTERACTIONS + 1), size),
                MAX_DRAWN_INTERACTIONS,
            )
            owners = np.repeat(np.arange(size, dtype=np.int64), drawn)
            uniforms = rng.random(len(owners))
            liked = rng.random(len(owners)) < FAVOURITE_SHARE
            chosen = _draw(item_cdf, uniforms)
            slots = (rng.random(int(liked.sum())) * FAVOURITES).astype(np.int64)
            attributes = favourites[first + owners[liked], slots]
            positions = np.searchsorted(attribute_keys, attributes + uniforms[liked], side="right")
            chosen[liked] = attribute_items[np.minimum(positions, len(attribute_items) - 1)]
            codes = np.unique(owners * n_items + chosen)  # repeats dropped
            owners, chosen = codes // n_items, codes % n_items
            order = np.lexsort((rng.random(len(owners)), owners))  # a random order within each user
            owners, chosen = owners[order], chosen[order]
            per_user = np.bincount(owners, minlength=size)
            user_starts = np.concatenate(([0], np.cumsum(per_user)[:-1]))
            position = np.arange(len(owners)) - user_starts[owners]
            n_train = np.maximum(1, np.floor(TRAIN_SHARE * per_user)).astype(np.int64)
            n_valid = np.minimum(per_user - n_train, np.floor(VALID_SHARE * per_user + 0.5).astype(np.int64))
            split = (position >= n_train[owners]).astype(np.int64) + (position >= (n_train + n_valid)[owners])
            for code, name in enumerate(split_names):
                interactions[name] += int((split == code).sum())
            names = user_names[first:last]
            csv_handle.write(
                "".join(
                    f"{names[owner]},{item},{split_names[part]}\n"
                    for owner, item, part in zip(
                        owners.tolist(), chosen.tolist(), split.tolist(), strict=True
                    )
                )
            )
            users_handle.write(
                "".join(
                    f'{{"id": "{user_names[user]}", "friends": ['
                    + ", ".join(
                        f'"{user_names[friend]}"'
                        for friend in friends[friends_pointers[user] : friends_pointers[user + 1]]
                    )
                    + "]}\n"
                    for user in range(first, last)
                )
            )
            report(progress, "synthetic users", last, n_users, "user")
    return interactions, len(friends) // 2, n_users


def _friendships(
    rng: np.random.Generator, favourites: Ints, by_taste: Ints, mean: int
) -> tuple[Ints, list[int]]:
    """Mutual friendships, most between users of alike taste: a user with one of the user's
    favourites, or (when nobody else has it) a user within FRIEND_REACH places in `by_taste`, the
    users ordered by taste. Returns (pointers, friends) in CSR form, each user's friends ascending."""
    n_users = len(by_taste)
    started = rng.poisson(mean, n_users) if mean > 0 else np.zeros(n_users, dtype=np.int64)
    sources = np.repeat(np.arange(n_users, dtype=np.int64), started)
    # Users of each favourite attribute: fans[starts[a]:ends[a]] (a user twice if both slots agree).
    fan_attributes = favourites.ravel()
    order = np.argsort(fan_attributes, kind="stable")
    fans, fan_attributes = order // favourites.shape[1], fan_attributes[order]
    shared = favourites[sources, rng.integers(0, favourites.shape[1], len(sources))]
    first = np.searchsorted(fan_attributes, shared, side="left")
    count = np.searchsorted(fan_attributes, shared, side="right") - first
    alike = fans[first + (rng.random(len(sources)) * count).astype(np.int64)]
    place = np.empty(n_users, dtype=np.int64)
    place[by_taste] = np.arange(n_users)
    steps = rng.integers(1, FRIEND_REACH + 1, len(sources)) * np.where(rng.random(len(sources)) < 0.5, -1, 1)
    near = by_taste[np.clip(place[sources] + steps, 0, n_users - 1)]
    alike = np.where(alike == sources, near, alike)
    anyone = (rng.random(len(sources)) * n_users).astype(np.int64)
    targets = np.where(rng.random(len(sources)) < FRIEND_SAME_TASTE_SHARE, alike, anyone)
    keep = sources != targets
    sources, targets = sources[keep], targets[keep]
    codes = np.unique(np.concatenate((sources * n_users + targets, targets * n_users + sources)))
    owners, friends = codes // n_users, codes % n_users
    pointers = np.searchsorted(owners, np.arange(n_users + 1))
    return pointers, friends.tolist()
