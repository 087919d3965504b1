"""The SCPR release of the LastFM benchmark (`lastfm/` and `lastfm_star/`).

Formats are described in the data directory's README. Item, attribute and user ids are the
dataset's integers; they are also the catalog indices because the release numbers them 0..n-1.
A split named S is read from `review_dict_S.json` when that file exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crs.data.dataset import Dataset
from crs.data.errors import DataError, DataNotFoundError
from crs.data.files import as_int, read_json_object
from crs.types import Attribute, Catalog, Interactions, Item, User, UserId

SPLITS = ("train", "valid", "test")


def _names(entry: Any, path: Path, key: str) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("real_name"), list):
        raise DataError(f'entry {key}: expected {{"real_id": [...], "real_name": [name]}}', path)
    names = [str(name) for name in entry["real_name"]]
    return names[0] if names else ""


def _dense_ids(keys: list[int], path: Path, what: str) -> None:
    if sorted(keys) != list(range(len(keys))):
        raise DataError(f"{what} ids must be 0..{len(keys) - 1} without gaps", path)


def load_scpr(folder: Path, name: str) -> Dataset:
    if not folder.is_dir():
        raise DataNotFoundError(f"dataset {name!r} not found: no folder {folder}")

    tag_path = folder / "tag_reverse_map.json"
    tags = read_json_object(tag_path, '{attribute_id: {"real_id": [...], "real_name": [name]}}')
    attribute_ids = [as_int(key, tag_path, "attribute id") for key in tags]
    _dense_ids(attribute_ids, tag_path, "attribute")
    attributes = tuple(
        Attribute(index=a, id=a, name=_names(tags[str(a)], tag_path, str(a)) or f"attribute {a}")
        for a in range(len(attribute_ids))
    )

    names_path = folder / "item_reverse_map.json"
    item_names = read_json_object(names_path, '{item_id: {"real_id": [...], "real_name": [name]}}')
    item_path = folder / "item_dict.json"
    raw_items = read_json_object(item_path, '{item_id: {"feature_index": [attribute ids]}}')
    item_ids = [as_int(key, item_path, "item id") for key in raw_items]
    _dense_ids(item_ids, item_path, "item")
    items = []
    for i in range(len(item_ids)):
        entry = raw_items[str(i)]
        if not isinstance(entry, dict) or not isinstance(entry.get("feature_index"), list):
            raise DataError(f'item {i}: expected {{"feature_index": [attribute ids]}}', item_path)
        features = sorted({as_int(f, item_path, f"item {i} feature") for f in entry["feature_index"]})
        unknown = [f for f in features if not 0 <= f < len(attributes)]
        if unknown:
            raise DataError(f"item {i} has attribute ids {unknown} not listed in {tag_path.name}", item_path)
        title = _names(item_names[str(i)], names_path, str(i)) if str(i) in item_names else ""
        if not title or title == "None":  # 150 artists have the literal name "None" in the release
            title = f"Artist #{i}"
        items.append(Item(index=i, id=i, title=title, attributes=tuple(features)))
    catalog = Catalog(items=tuple(items), attributes=attributes)

    users_path = folder / "user_dict.json"
    raw_users = read_json_object(users_path, '{user_id: {"friends": [user ids], "like": [attribute ids]}}')
    users: dict[UserId, User] = {}
    for key, entry in raw_users.items():
        user_id = as_int(key, users_path, "user id")
        if not isinstance(entry, dict):
            raise DataError(f'user {key}: expected {{"friends": [...], "like": [...]}}', users_path)
        friends = tuple(as_int(f, users_path, f"user {key} friend") for f in entry.get("friends", []))
        liked = tuple(
            a
            for a in (as_int(x, users_path, f"user {key} like") for x in entry.get("like", []))
            if a < len(attributes)
        )
        users[user_id] = User(id=user_id, friends=friends, liked_attributes=liked)

    splits: dict[str, Interactions] = {}
    missing: dict[str, Path] = {}
    for split in SPLITS:
        path = folder / f"review_dict_{split}.json"
        if not path.exists():
            missing[split] = path
            continue
        splits[split] = _read_split(path, split, len(items))
    if "train" not in splits:
        raise DataError("missing file (expected the training split {user_id: [item ids]})", missing["train"])
    return Dataset(
        name=name, catalog=catalog, users=users, splits=splits, source=folder, missing_splits=missing
    )


def _read_split(path: Path, split: str, n_items: int) -> Interactions:
    raw = read_json_object(path, "{user_id: [item ids]}")
    by_user: dict[UserId, tuple[int, ...]] = {}
    for key, items in raw.items():
        user_id = as_int(key, path, "user id")
        if not isinstance(items, list):
            raise DataError(f"user {key}: expected a list of item ids, found {type(items).__name__}", path)
        ids = tuple(as_int(item, path, f"user {key} item") for item in items)
        bad = [item for item in ids if not 0 <= item < n_items]
        if bad:
            raise DataError(f"user {key} has item ids {bad[:5]} outside the catalog (0..{n_items - 1})", path)
        by_user[user_id] = ids
    return Interactions(split=split, by_user=by_user)
