"""The generic catalog format: bring your own items, attributes and (optionally) users.

A catalog is a folder; the dataset is named after the folder. All files are UTF-8 text.

items.jsonl (required)
    One JSON object per line, one item each; blank lines are ignored::

        {"id": "tt0114709", "title": "Toy Story (1995)",
         "attributes": {"genre": ["Animation", "Comedy"], "decade": ["1990s"]},
         "facts": {"year": "1995"}, "text": "A cowboy doll is threatened by a new spaceman toy."}

    - `id` (required): a JSON integer or a non-empty string; it keeps its JSON type. Ids must be
      unique, also when written as text: `42` and `"42"` are the same id, because `interactions.csv`
      cannot tell them apart.
    - `title` (required): a non-empty string.
    - `attributes` (optional, default none): either a list of strings, each an attribute of group
      "tag" whose id and name are the string (`["animation", "1990s"]`), or an object mapping a group
      name to a list of strings, each an attribute with id "group:value", name "value" and that
      group (`{"genre": ["Animation"]}` gives id "genre:Animation"). Surrounding whitespace of a
      value is removed; empty values are problems; repeats within one item are ignored. Attributes
      are numbered in the order they first appear in the file.
    - `facts` (optional): an object of readable facts shown with the item; values are strings or
      numbers (numbers are written as text).
    - `text` (optional): a free description, kept as the item's fact "text".
    - Any other key is a problem: it is most often a misspelling of one of these.

interactions.csv (optional)
    A CSV file with the header `user_id,item_id` or `user_id,item_id,split`, then one
    interaction per row. User ids are strings; item ids must be ids of `items.jsonl` (compared as
    text). `split` is `train`, `valid` or `test`; an empty or absent split means `train`. A
    repeated (user, item) row in one split counts once; the same (user, item) pair in two splits is
    a problem, because a target seen in training makes the evaluation meaningless. Each row of a
    split is one conversation target of that split. Without this file the dataset has an empty
    train split.

users.jsonl (optional)
    One JSON object per line: `{"id": "u1", "friends": ["u2", "u3"]}`. The id is a string (an
    integer is read as its text, to match `interactions.csv`); `friends` (optional) lists ids of users
    known from `users.jsonl` or `interactions.csv`. Users that appear only in `interactions.csv`
    get an empty profile.

`validate_generic(folder)` reports every problem it finds, each with its file and line;
`load_generic(folder)` raises `DataError` listing the first ones. `docs/generic-format.md` has the
same description and a complete small example.

Speed: a catalog of a million items (200 MB of items.jsonl) loads in about 20 s of CPU and 0.8 GB,
half the time and 55 % of the memory of reading every line the careful way. Each JSON line is
first decoded with orjson and given to a quick path that accepts only what is plainly right (known
keys of the right types, attribute values seen before, nothing orjson may read otherwise than
json); any other line goes to the careful path, which alone defines attributes, decides what is
accepted and words the problems, with the value json reads (orjson's where it is the same).
Both give the same items.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import reprlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson

from crs.data.dataset import Dataset
from crs.data.errors import DataError, DataNotFoundError
from crs.types import Attribute, Catalog, Interactions, Item, User, UserId

ITEMS_FILE = "items.jsonl"
INTERACTIONS_FILE = "interactions.csv"
USERS_FILE = "users.jsonl"
SPLITS = ("train", "valid", "test")
ITEM_KEYS = frozenset({"id", "title", "attributes", "facts", "text"})
USER_KEYS = frozenset({"id", "friends"})
MAX_LISTED = 5  # problems quoted in a DataError; the validator lists them all
T = TypeVar("T")
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}
# json reads a value nested about a thousand deep as a RecursionError (a problem); orjson reads up
# to 1,024 levels. A line with fewer opening brackets than this cannot tell them apart.
ORJSON_MAX_OPENINGS = 900
_EMPTY_LIST: list[str] = []
# orjson reads an integer outside the 64-bit range as a float (json as an int), so a float this
# large may have been written as an integer.
TWO_TO_63 = 2.0**63


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a data file; `line` is 1-based, None when it concerns the whole file."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class _Reader:
    """Reads a catalog folder, collecting problems instead of stopping at the first."""

    folder: Path
    problems: list[Problem] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    attribute_of: dict[str, int] = field(default_factory=dict)
    attribute_line: dict[str, int] = field(default_factory=dict)
    # Text id -> index of the items read, and the line of each (for duplicate ids).
    index_of: dict[str, int] = field(default_factory=dict)
    item_lines: array[int] = field(default_factory=lambda: array("q"))
    # Ids of the item lines the careful path read, valid or not: with `index_of`, every line's id,
    # so that one bad item does not also make each of its interactions a problem.
    seen_ids: set[str] = field(default_factory=set)
    # The quick path's memory of attribute values the careful path accepted: raw group -> raw value
    # -> attribute index (object form), raw value -> attribute index (list form).
    group_values: dict[str, dict[str, int]] = field(default_factory=dict)
    list_values: dict[str, int] = field(default_factory=dict)
    # One string object per fact name and per integer fact: a million "year" facts share them.
    fact_names: dict[str, str] = field(default_factory=dict)
    int_texts: dict[int, str] = field(default_factory=dict)

    def problem(self, path: Path, line: int | None, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    # --- items ------------------------------------------------------------------------------------

    def usable(self, path: Path, required: bool, what: str) -> bool:
        """Whether `path` is a regular file to read; a problem when it is something else (a
        folder, a link to nowhere or to itself) or, if `required`, absent."""
        if path.is_file():
            return True
        if path.is_dir():
            self.problem(path, None, "is a folder, not a file")
        elif path.is_symlink():
            self.problem(path, None, "is a link that leads nowhere (or to itself)")
        elif path.exists():
            self.problem(path, None, "is not a regular file")
        elif required:
            self.problem(path, None, f"missing file (required: {what})")
        return False

    def read_items(self) -> list[Item]:
        path = self.folder / ITEMS_FILE
        if not self.usable(path, required=True, what="one JSON object per item"):
            return []
        items: list[Item] = []
        index_of, item_lines = self.index_of, self.item_lines
        for line, entry, item in _json_lines(
            path, self, lambda decoded: self._plain_item(decoded, len(items))
        ):
            index = len(items)
            if item is None:
                item = self._item(entry, path, line, index)
                if item is None:
                    continue
            key = str(item.id)
            first = index_of.get(key)
            if first is not None:
                self.problem(
                    path, line, f"duplicate id {_shown(item.id)} (first used on line {item_lines[first]})"
                )
                continue
            index_of[key] = index
            item_lines.append(line)
            items.append(item)
        if not items and not any(p.path == path for p in self.problems):
            self.problem(path, None, "no items: the catalog needs at least one")
        elif items and not self.attributes and not any(p.path == path for p in self.problems):
            self.problem(
                path, None, 'no item has "attributes": a conversation asks about them, so none could be had'
            )
        return items

    def _plain_item(self, entry: Any, index: int) -> Item | None:
        """The item of a line that is plainly right, or None to leave the line to `_item`, the
        careful path. It accepts only lines `_item` accepts, builds the same item and changes
        nothing else: attributes are only looked up (a new one goes the careful way). `entry` is
        orjson's value: no float it accepts can be an integer to json (see `_json_lines`)."""
        if type(entry) is not dict or not ITEM_KEYS.issuperset(entry):
            return None
        item_id = entry.get("id")
        if type(item_id) is not int and not (type(item_id) is str and item_id.strip()):
            return None  # absent, bool, float, blank...
        title = entry.get("title")
        if type(title) is not str:
            return None
        title = title.strip()
        if not title:
            return None
        raw = entry.get("attributes", _EMPTY_LIST)
        found: list[int | None]
        try:  # an unhashable value (a list where a string belongs) raises TypeError
            if type(raw) is dict:
                found = []
                for group, values in raw.items():
                    known = self.group_values.get(group)
                    if known is None or type(values) is not list:
                        return None
                    found.extend(map(known.get, values))
            elif type(raw) is list:
                found = list(map(self.list_values.get, raw))
            else:
                return None
        except TypeError:
            return None
        if None in found:
            return None  # a value not seen before: the careful path defines it
        facts: list[tuple[str, str]] = []
        raw_facts = entry.get("facts")
        if raw_facts is not None:
            if type(raw_facts) is not dict:
                return None
            names, int_texts = self.fact_names, self.int_texts
            for name, value in raw_facts.items():
                kind = type(value)
                if kind is str:
                    text = value
                elif kind is int:
                    text = int_texts.get(value) or int_texts.setdefault(value, str(value))
                elif kind is float and -TWO_TO_63 < value < TWO_TO_63:
                    text = str(value)
                else:
                    return None  # bool, null, list, object: the careful path says which
                facts.append((names.setdefault(name, name), text))
        elif "facts" in entry:
            return None  # "facts": null
        if "text" in entry:
            text = entry["text"]
            if type(text) is not str or (raw_facts is not None and "text" in raw_facts):
                return None
            facts.append(("text", text))
        attributes = cast(list[int], found)  # None was ruled out above
        if len(attributes) > 1:
            attributes = sorted(set(attributes))
        return Item(index=index, id=item_id, title=title, attributes=tuple(attributes), facts=tuple(facts))

    def _item(self, entry: Any, path: Path, line: int, index: int) -> Item | None:
        if not isinstance(entry, dict):
            self.problem(path, line, f"expected a JSON object, found {_kind(entry)}")
            return None
        ok = True
        unknown = sorted(set(entry) - ITEM_KEYS)
        if unknown:
            self.problem(
                path, line, f"unknown keys {_shown(unknown)} (allowed: {', '.join(sorted(ITEM_KEYS))})"
            )
            ok = False
        item_id = entry.get("id")
        if "id" not in entry:
            self.problem(path, line, 'missing "id"')
            ok = False
        elif not _valid_id(item_id):
            self.problem(
                path, line, f'"id" must be an integer or a non-empty string, found {_shown(item_id)}'
            )
            ok = False
        else:
            self.seen_ids.add(str(item_id))
        title = entry.get("title")
        if "title" not in entry:
            self.problem(path, line, 'missing "title"')
            ok = False
        elif not isinstance(title, str) or not title.strip():
            self.problem(path, line, f'"title" must be a non-empty string, found {_shown(title)}')
            ok = False
        attributes = self._attributes(entry.get("attributes", []), path, line)
        facts = self._facts(entry, path, line)
        if not ok or attributes is None or facts is None:
            return None
        assert isinstance(item_id, int | str) and isinstance(title, str)  # checked above
        return Item(index=index, id=item_id, title=title.strip(), attributes=attributes, facts=facts)

    def _attributes(self, raw: Any, path: Path, line: int) -> tuple[int, ...] | None:
        """Indices of the item's attributes, defining new ones on first use; None after a problem."""
        pairs: list[tuple[str, str]] = []  # (group, value)
        raw_pairs: list[
            tuple[str | None, str]
        ] = []  # (group as written or None for a list, value as written)
        if isinstance(raw, list):
            values = self._values(raw, path, line, '"attributes"')
            if values is None:
                return None
            pairs = [("tag", value) for value in values]
            raw_pairs = [(None, value) for value in raw]
        elif isinstance(raw, dict):
            for group, group_values in raw.items():
                if not group.strip():
                    self.problem(path, line, '"attributes" has an empty group name')
                    return None
                values = self._values(group_values, path, line, '"attributes" group', group)
                if values is None:
                    return None
                pairs.extend((group.strip(), value) for value in values)
                raw_pairs.extend((group, value) for value in group_values)
        else:
            self.problem(
                path,
                line,
                f'"attributes" must be a list of strings or an object of group -> list, found {_kind(raw)}',
            )
            return None
        indices: set[int] = set()
        for group, value in pairs:
            # List values keep their text as id so that `["rock"]` reads naturally in transcripts.
            attribute_id = value if isinstance(raw, list) else f"{group}:{value}"
            known = self.attribute_of.get(attribute_id)
            if known is None:
                known = len(self.attributes)
                self.attributes.append(Attribute(index=known, id=attribute_id, name=value, group=group))
                self.attribute_of[attribute_id] = known
                self.attribute_line[attribute_id] = line
            elif (self.attributes[known].group, self.attributes[known].name) != (group, value):
                first = self.attributes[known]
                self.problem(
                    path,
                    line,
                    f"attribute id {_shown(attribute_id)} means {_shown(value)} of group {_shown(group)} "
                    f"here but {_shown(first.name)} of group {_shown(first.group)} "
                    f"on line {self.attribute_line[attribute_id]}",
                )
                return None
            indices.add(known)
        # Remember each value as written, with its attribute, for the quick path of later lines.
        for (raw_group, raw_value), (group, value) in zip(raw_pairs, pairs, strict=True):
            attribute = self.attribute_of[value if raw_group is None else f"{group}:{value}"]
            if raw_group is None:
                self.list_values[raw_value] = attribute
            else:
                self.group_values.setdefault(raw_group, {})[raw_value] = attribute
        return tuple(sorted(indices))

    def _values(
        self, raw: Any, path: Path, line: int, what: str, group: str | None = None
    ) -> list[str] | None:
        """The stripped strings of a list of attribute values; None after a problem. `what` names
        the list in messages, followed by the group (quoted) when there is one: quoting it only
        when a message is written keeps the good lines fast."""
        if not isinstance(raw, list):
            self.problem(path, line, f"{_what(what, group)} must be a list of strings, found {_kind(raw)}")
            return None
        bad = [value for value in raw if not isinstance(value, str) or not value.strip()]
        if bad:
            self.problem(
                path, line, f"{_what(what, group)} must hold non-empty strings, found {_shown(bad[0])}"
            )
            return None
        return [value.strip() for value in raw]

    def _facts(self, entry: dict[str, Any], path: Path, line: int) -> tuple[tuple[str, str], ...] | None:
        raw = entry.get("facts", {})
        if not isinstance(raw, dict):
            self.problem(path, line, f'"facts" must be an object of name -> text, found {_kind(raw)}')
            return None
        facts: list[tuple[str, str]] = []
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.problem(
                    path, line, f"fact {_shown(name)} must be a string or a number, found {_kind(value)}"
                )
                return None
            facts.append((name, str(value)))
        if "text" in entry:
            text = entry["text"]
            if not isinstance(text, str):
                self.problem(path, line, f'"text" must be a string, found {_kind(text)}')
                return None
            if "text" in raw:
                self.problem(path, line, 'both "text" and the fact "text" are given; keep one')
                return None
            facts.append(("text", text))
        return tuple(facts)

    # --- interactions -----------------------------------------------------------------------------

    def read_interactions(self, items: list[Item]) -> dict[str, dict[UserId, tuple[int, ...]]]:
        path = self.folder / INTERACTIONS_FILE
        by_split: dict[str, dict[UserId, list[int]]] = {"train": {}}
        if not self.usable(path, required=False, what=""):
            return {"train": {}}
        index_of = self.index_of  # the items read: `items` are index_of's values
        # user -> item -> 4 * line + split code of the pair's first row; per user rather than keyed
        # by (user, item) pairs, which cost three objects a row at millions of rows.
        first_row: dict[str, dict[int, int]] = {}
        for line, fields in _csv_rows(path, self):
            user_id, item_id = fields[0].strip(), fields[1].strip()
            split = fields[2].strip() if len(fields) > 2 and fields[2].strip() else "train"
            item = index_of.get(item_id)
            code = SPLIT_CODES.get(split)
            if not user_id or item is None or code is None:
                if not user_id:
                    self.problem(path, line, "empty user_id")
                if item is None and item_id not in self.seen_ids:
                    self.problem(path, line, f"unknown item_id {_shown(item_id)} (not an id of {ITEMS_FILE})")
                if code is None:
                    self.problem(
                        path, line, f"unknown split {_shown(split)} (expected one of {', '.join(SPLITS)})"
                    )
                continue  # an item read with a problem has had it reported on its own line
            rows_of_user = first_row.get(user_id)
            if rows_of_user is None:
                rows_of_user = first_row[user_id] = {}
            earlier = rows_of_user.get(item)
            if earlier is None:
                rows_of_user[item] = 4 * line + code
                by_split.setdefault(split, {}).setdefault(user_id, []).append(item)
            elif earlier & 3 != code:
                self.problem(
                    path,
                    line,
                    f"user {_shown(user_id)} and item {_shown(item_id)} are in split {split!r} here "
                    f"and in split {SPLITS[earlier & 3]!r} on line {earlier >> 2}",
                )
        ordered = [name for name in SPLITS if name in by_split]
        return {name: {user: tuple(its) for user, its in by_split[name].items()} for name in ordered}

    # --- users ------------------------------------------------------------------------------------

    def read_users(self, interacting: set[UserId]) -> dict[UserId, User]:
        path = self.folder / USERS_FILE
        if not self.usable(path, required=False, what=""):
            return {user_id: User(id=user_id) for user_id in sorted(interacting, key=str)}
        entries: list[tuple[int, str, list[str]]] = []
        line_of_id: dict[str, int] = {}
        is_space = str.isspace
        for line, entry, _ in _json_lines(path, self):
            if not isinstance(entry, dict):
                self.problem(path, line, f"expected a JSON object, found {_kind(entry)}")
                continue
            unknown = sorted(set(entry) - USER_KEYS)
            if unknown:
                self.problem(
                    path, line, f"unknown keys {_shown(unknown)} (allowed: {', '.join(sorted(USER_KEYS))})"
                )
                continue
            raw_id = entry.get("id")
            if not _valid_id(raw_id):
                self.problem(path, line, f'"id" must be a non-empty string, found {_shown(raw_id)}')
                continue
            user_id = str(raw_id)
            if user_id in line_of_id:
                self.problem(
                    path,
                    line,
                    f"duplicate user id {_shown(user_id)} (first used on line {line_of_id[user_id]})",
                )
                continue
            line_of_id[user_id] = line
            friends = entry.get("friends", _EMPTY_LIST)
            if (
                type(friends) is list
                and _all_text(friends)
                and all(friends)
                and not any(map(is_space, friends))
            ):
                entries.append(
                    (line, user_id, friends)
                )  # non-blank strings: the usual case, checked at C speed
                continue
            if not isinstance(friends, list) or not all(_valid_id(f) for f in friends):
                self.problem(path, line, f'"friends" must be a list of user ids, found {_shown(friends)}')
                continue
            entries.append((line, user_id, [str(f) for f in friends]))
        known = set(line_of_id) | {str(u) for u in interacting}
        users: dict[UserId, User] = {}
        for line, user_id, friends in entries:
            strangers = [] if known.issuperset(friends) else [f for f in friends if f not in known]
            if strangers:
                self.problem(
                    path,
                    line,
                    f"friends {_shown(strangers)} are neither in {USERS_FILE} nor in {INTERACTIONS_FILE}",
                )
            users[user_id] = User(id=user_id, friends=tuple(dict.fromkeys(friends)))
        for other in sorted(interacting - set(users), key=str):
            users[other] = User(id=other)
        return users


def _all_text(values: list[Any]) -> bool:
    """Whether every value is a string (str.join refuses anything else, in C)."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _what(what: str, group: str | None) -> str:
    return what if group is None else f"{what} {_shown(group)}"


def _valid_id(value: Any) -> bool:
    # bool is an int in Python, but `true` as an id is a mistake in the file.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and bool(value.strip()))


# Bounded in depth and length: a quoted value can be megabytes long or nested past the recursion
# limit, and a problem is one readable line. Strings keep the quotes and escapes of repr, so a
# newline in a value cannot break the line.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxlong, _SHOWN.maxother = 3, 80, 40, 80
_SHOWN.maxlist = _SHOWN.maxdict = 6


def _shown(value: Any) -> str:
    return _SHOWN.repr(value)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _as_json_reads(value: Any) -> bool:
    """Whether json reads a line as orjson read it into `value`: not when orjson made a float of an
    integer beyond 64 bits (json reads an int, or words a problem for thousands of digits)."""
    kind = type(value)
    if kind is float:
        return bool(-TWO_TO_63 < value < TWO_TO_63)
    if kind is list:
        return _all_text(value) or all(map(_as_json_reads, value))
    if kind is dict:
        return all(map(_as_json_reads, value.values()))
    return True


def _json_lines(
    path: Path, reader: _Reader, quick: Callable[[Any], T | None] | None = None
) -> Iterator[tuple[int, Any, T | None]]:
    """(line number, value as json reads it, None) or (line number, None, quick's result) of each
    non-blank line; undecodable lines become problems.

    orjson decodes twice as fast as json but reads a few things otherwise: an integer beyond 64
    bits as a float; NaN, a lone surrogate or a value nested a thousand deep not at all, where json
    reads them or words a problem. So orjson's value goes to `quick`, which returns a result only
    for a value it vouches json would read alike; else it is given as json's value when
    `_as_json_reads` says it is; else json decodes the line, and alone decides what is accepted
    and words the problems."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                if text.count("[") + text.count("{") < ORJSON_MAX_OPENINGS:
                    try:
                        quick_value = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        pass
                    else:
                        done = quick(quick_value) if quick is not None else None
                        if done is not None:
                            yield line, None, done
                            continue
                        if _as_json_reads(quick_value):
                            yield line, quick_value, None
                            continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as error:
                    reader.problem(path, line, f"not valid JSON ({error.msg}, column {error.colno})")
                    continue
                except RecursionError:
                    reader.problem(path, line, "JSON nested too deeply to read")
                    continue
                except ValueError as error:  # e.g. an integer of thousands of digits
                    reader.problem(path, line, f"JSON that cannot be read: {error}")
                    continue
                yield line, value, None
    except UnicodeDecodeError as error:
        reader.problem(path, None, f"not UTF-8 text (byte {error.start})")
    except OSError as error:
        reader.problem(path, None, f"cannot be read: {error.strerror or error}")


def _csv_rows(path: Path, reader: _Reader) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row after a valid header; other rows become problems."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            columns = [name.strip() for name in header] if header is not None else None
            if columns not in (["user_id", "item_id"], ["user_id", "item_id", "split"]):
                found = "an empty file" if header is None else _shown(",".join(header))[1:-1]
                reader.problem(path, 1, f"expected the header user_id,item_id[,split], found {found}")
                return
            assert columns is not None
            for fields in rows:
                if not fields:
                    continue
                first = fields[0]
                if (not first or first.isspace()) and not any(f.strip() for f in fields):
                    continue  # a blank row (the first field alone decides for almost every row)
                # A missing trailing split is allowed: it means train.
                if not 2 <= len(fields) <= len(columns):
                    reader.problem(
                        path,
                        rows.line_num,
                        f"expected {len(columns)} fields ({','.join(columns)}), found {len(fields)}",
                    )
                    continue
                yield rows.line_num, fields
    except UnicodeDecodeError as error:
        reader.problem(path, None, f"not UTF-8 text (byte {error.start})")
    except OSError as error:
        reader.problem(path, None, f"cannot be read: {error.strerror or error}")
    except csv.Error as error:
        reader.problem(path, None, f"not valid CSV: {error}")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused: a million items are tens of millions of new objects,
    none in a cycle, which the collector would otherwise walk again and again (a fifth of the
    time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(folder: Path) -> tuple[Dataset | None, list[Problem]]:
    with _collector_paused():
        return _read_files(folder)


def _read_files(folder: Path) -> tuple[Dataset | None, list[Problem]]:
    reader = _Reader(folder)
    if not folder.is_dir():
        reader.problem(folder, None, "not a folder (a catalog is a folder holding items.jsonl)")
        return None, reader.problems
    items = reader.read_items()
    splits = reader.read_interactions(items)
    interacting: set[UserId] = {user for by_user in splits.values() for user in by_user}
    users = reader.read_users(interacting)
    if reader.problems:
        return None, reader.problems
    dataset = Dataset(
        name=folder.resolve().name,
        catalog=Catalog(items=tuple(items), attributes=tuple(reader.attributes)),
        users=users,
        splits={name: Interactions(split=name, by_user=by_user) for name, by_user in splits.items()},
        source=folder,
    )
    return dataset, []


def validate_generic(folder: Path) -> list[Problem]:
    """Every problem of a catalog folder, in file order; an empty list when it loads."""
    return _read(folder)[1]


def load_generic(folder: Path) -> Dataset:
    if not folder.is_dir():
        raise DataNotFoundError(f"no catalog folder {folder}")
    dataset, problems = _read(folder)
    if dataset is None:
        listed = "\n".join(f"  {_relative(problem, folder)}" for problem in problems[:MAX_LISTED])
        more = len(problems) - MAX_LISTED
        tail = (
            f"\n  ... and {more} more; run `crs data validate {folder}` for all of them" if more > 0 else ""
        )
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise DataError(f"not a valid catalog in the generic format ({count}):\n{listed}{tail}", folder)
    return dataset


def _relative(problem: Problem, folder: Path) -> str:
    """The problem with its path shortened to the file name inside the catalog folder."""
    try:
        path = problem.path.relative_to(folder)
    except ValueError:
        path = problem.path
    return str(Problem(path, problem.line, problem.message))
