"""Question banks and question rules: which attributes a policy may ask about, and how the chat words it.

A *question bank* (`crs/question_banks/<dataset>.toml`, or any file of the same form) is written by
designers: the attribute groups, their display names and question templates, groups asked as one
multiple-choice question ("Which decade?"), and attributes never to ask (meaningless or offensive
tags). A policy configuration's `[questions]` table picks a bank (`bank = "default"`: the
dataset's own) and overrides parts of it, plus rules that are not wording: `ask_groups`,
`max_questions`, `weights`.

Every registered policy takes the same `questions=` parameter, a plain JSON-able mapping (so a
run's configuration records it), and `PolicyBase` turns it into one `QuestionRules` object,
resolved against the catalog once: an askable mask, a weight per attribute and a question limit.
`None` or `{}` means no rules at all, so a policy without them behaves exactly as before.

The simulated protocol stays binary, one attribute per question; only the chat shows a question
about an attribute of a "choice" group as one multiple-choice question over that group's values.
"""

from __future__ import annotations

import hashlib
import random
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from crs.index import BoolArray, FloatArray
from crs.registry import suggest
from crs.settings import ConfigError, finite
from crs.types import Ask, Catalog, DialogueState

STYLES = ("yesno", "choice")
DEFAULT_BANK = "default"  # `bank = "default"`: the dataset's packaged bank (none for other catalogs)
NO_BANK = ("", "none")
DEFAULT_TEMPLATE = "Do you like {name}?"
MAX_CHOICES = 12  # buttons of one multiple-choice question; the asked value is always among them

# Keys of a [questions] table and of a bank file: (expected kind, what it is).
QUESTION_KEYS: dict[str, str] = {
    "bank": "string",
    "ask_groups": "list of strings",
    "never": "list of strings",
    "never_containing": "list of strings",
    "allow": "list of strings",
    "max_questions": "integer",
    "weights": "table of numbers",
    "attribute_weights": "table of numbers",
    "names": "table of strings",
    "groups": "table of tables",
}
GROUP_KEYS: dict[str, str] = {
    "label": "string",
    "style": "string",
    "templates": "list of strings",
    "question": "string",
    "members": "list of strings",
    "lowercase": "boolean",
}
_LIST_KEYS = ("never", "never_containing", "allow")  # a config adds to the bank's lists
_TABLE_KEYS = ("weights", "attribute_weights", "names")  # a config updates the bank's tables


def _kind_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list of strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "table of numbers":
        return isinstance(value, Mapping) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
        )
    if kind == "table of strings":
        return isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())
    if kind == "table of tables":
        return isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values())
    raise AssertionError(kind)


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def check_questions(spec: Mapping[str, Any], where: str, bank_file: bool = False) -> dict[str, Any]:
    """The [questions] table (or a bank file) checked for keys, types and values that need no
    catalog, as a plain dict (numbers as floats). Raises ConfigError naming `where` and the key."""
    allowed = {k: v for k, v in QUESTION_KEYS.items() if not (bank_file and k == "bank")}
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r}{suggest(key, allowed)}; allowed: {', '.join(allowed)}"
            )
        kind = allowed[key]
        if not _kind_ok(value, kind):
            raise ConfigError(f"{where}: {key!r} must be a {kind}, got {_type_name(value)} {value!r}")
        if key == "max_questions" and value < 0:
            raise ConfigError(f"{where}: 'max_questions' must be 0 or more, got {value}")
        if key in ("weights", "attribute_weights"):
            for name, weight in value.items():
                if not finite(weight) or weight < 0:
                    raise ConfigError(
                        f"{where}: {key}.{name} must be a finite number of at least 0, got {weight}"
                    )
            value = {str(name): float(weight) for name, weight in value.items()}
        if key == "groups":
            value = {str(g): _check_group(fields, f"{where}: groups.{g}") for g, fields in value.items()}
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, list):
            value = list(value)
        out[key] = value
    return out


def _check_group(fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in GROUP_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}{suggest(key, GROUP_KEYS)}; allowed: {', '.join(GROUP_KEYS)}"
            )
        if not _kind_ok(value, GROUP_KEYS[key]):
            raise ConfigError(
                f"{where}: {key!r} must be a {GROUP_KEYS[key]}, got {_type_name(value)} {value!r}"
            )
        if key == "style" and value not in STYLES:
            raise ConfigError(f"{where}: style must be one of {', '.join(STYLES)}, got {value!r}")
        if key == "templates":
            if not value:
                raise ConfigError(f"{where}: 'templates' needs at least one template")
            for template in value:
                try:
                    template.format(name="x")
                except (KeyError, IndexError, ValueError):
                    raise ConfigError(
                        f"{where}: template {template!r} may use only the placeholder {{name}}"
                    ) from None
        out[key] = list(value) if isinstance(value, list) else value
    return out


def bank_path(dataset_name: str) -> Path | None:
    """The packaged bank of a dataset, or None (generic catalogs have none)."""
    resource = resources.files("crs").joinpath("question_banks", f"{dataset_name}.toml")
    return Path(str(resource)) if resource.is_file() else None


def read_bank(path: Path) -> dict[str, Any]:
    """A bank file, checked for keys and types (names are checked against a catalog later)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"question bank not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return check_questions(raw, str(path), bank_file=True)


def merge_questions(bank: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The bank with a config's [questions] on top: lists of excluded names grow, tables are
    updated key by key (groups field by field), anything else is replaced."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in bank.items()}
    for key, value in overrides.items():
        if key == "bank":
            continue
        if key in _LIST_KEYS:
            merged[key] = list(merged.get(key, [])) + [v for v in value if v not in merged.get(key, [])]
        elif key in _TABLE_KEYS:
            merged[key] = {**merged.get(key, {}), **value}
        elif key == "groups":
            groups = {g: dict(f) for g, f in merged.get("groups", {}).items()}
            for group, fields in value.items():
                groups[group] = {**groups.get(group, {}), **fields}
            merged[key] = groups
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class GroupWording:
    """How the chat asks about one attribute group."""

    name: str
    label: str
    style: str = "yesno"
    templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)
    question: str = ""  # the multiple-choice question of a "choice" group ("Which decade?")
    lowercase: bool = False
    members: tuple[int, ...] = ()  # attribute indices in the bank's order (choice buttons)


@dataclass(frozen=True, eq=False)
class QuestionRules:
    """Question rules resolved against one catalog (see the module docstring)."""

    askable: BoolArray  # per attribute: may a policy ask about it
    weights: FloatArray  # per attribute: multiplies the policy's score of the question
    max_questions: int | None  # then only recommendations; None: no limit
    group_of: tuple[str, ...]  # per attribute: its group (the bank's `members` override the catalog's)
    groups: Mapping[str, GroupWording]
    names: tuple[str, ...]  # per attribute: display name
    spec: Mapping[str, Any]  # the merged, checked rules they were built from

    @property
    def weighted(self) -> bool:
        """Whether any weight differs from 1 (only then do policies change how they rank questions)."""
        return bool((self.weights != 1.0).any())

    def may_ask(self, state: DialogueState) -> bool:
        """False once `max_questions` questions were asked in this conversation."""
        if self.max_questions is None:
            return True
        asked = sum(1 for exchange in state.history if isinstance(exchange.action, Ask))
        return asked < self.max_questions

    def question_scores(self, scores: FloatArray, floor: float = 0.0) -> FloatArray:
        """A policy's question scores (higher is better) with the rules applied: an unaskable
        attribute gets `floor`, a positive score is multiplied by its attribute's weight."""
        out = np.where(scores > 0, scores * self.weights, scores)
        out[~self.askable] = floor
        return out

    def fingerprint(self) -> str:
        """Hash of what changes which questions are asked (for caches of learned question plans)."""
        digest = hashlib.sha256()
        digest.update(np.packbits(self.askable).tobytes())
        digest.update(np.ascontiguousarray(self.weights, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    # --- wording (the chat) ---------------------------------------------------------------------

    def group(self, attribute: int) -> GroupWording:
        name = self.group_of[attribute]
        return self.groups.get(name) or GroupWording(name, name.capitalize())

    def display_name(self, attribute: int) -> str:
        return self.names[attribute]

    def is_choice(self, attribute: int) -> bool:
        return self.group(attribute).style == "choice"

    def question(self, attribute: int, rng: random.Random) -> str:
        """The question about one attribute: its group's multiple-choice question, or one of the
        group's yes/no templates (seeded: a conversation replays word for word)."""
        group = self.group(attribute)
        if group.style == "choice":
            return group.question or f"Which {group.label.lower()}?"
        return rng.choice(group.templates).format(name=self.display_name(attribute))

    def choices(self, attribute: int, known: Iterable[int] = ()) -> tuple[int, ...]:
        """The buttons of a multiple-choice question about `attribute`: the askable values of its
        group whose status is not known yet, in the bank's order, the asked one always included."""
        group = self.group(attribute)
        skip = set(known)
        members = group.members or tuple(
            a for a in range(len(self.group_of)) if self.group_of[a] == group.name
        )
        values = [a for a in members if a == attribute or (self.askable[a] and a not in skip)]
        if len(values) > MAX_CHOICES:
            position = values.index(attribute)
            start = min(max(0, position - MAX_CHOICES // 2), len(values) - MAX_CHOICES)
            values = values[start : start + MAX_CHOICES]
        return tuple(values)


def _attribute_lookup(catalog: Catalog) -> dict[str, list[int]]:
    lookup: dict[str, list[int]] = {}
    for attribute in catalog.attributes:
        lookup.setdefault(attribute.name, []).append(attribute.index)
        if str(attribute.id) != attribute.name:
            lookup.setdefault(str(attribute.id), []).append(attribute.index)
    return lookup


def _resolve_names(
    names: Sequence[str], lookup: Mapping[str, list[int]], where: str, dataset: str
) -> list[int]:
    found: list[int] = []
    for name in names:
        if name not in lookup:
            raise ConfigError(f"{where}: unknown attribute {name!r} in {dataset}{suggest(name, lookup)}")
        found.extend(lookup[name])
    return found


def resolve_questions(
    questions: Mapping[str, Any] | None, catalog: Catalog, dataset_name: str, where: str = "questions"
) -> QuestionRules | None:
    """`questions` (a [questions] table: a bank reference plus overrides) resolved against a
    catalog; None for no rules (None or {}). Unknown groups and attribute names are errors that
    name the key and suggest close matches."""
    if not questions:
        return None
    own = check_questions(questions, where)
    reference = own.get("bank", "")
    bank: dict[str, Any] = {}
    bank_where = where
    if reference == DEFAULT_BANK:
        path = bank_path(dataset_name)
        if path is not None:
            bank, bank_where = read_bank(path), str(path)
    elif reference not in NO_BANK:
        bank, bank_where = read_bank(Path(reference)), reference
    spec = merge_questions(bank, own)
    # Errors from the bank's own keys name the bank file; a config's additions name the config.
    label = f"{where} (bank {bank_where})" if bank_where != where else where
    return _build(spec, catalog, dataset_name, label)


def _build(spec: Mapping[str, Any], catalog: Catalog, dataset: str, where: str) -> QuestionRules:
    n = catalog.n_attributes
    lookup = _attribute_lookup(catalog)
    group_of = [a.group for a in catalog.attributes]
    raw_groups: Mapping[str, Mapping[str, Any]] = spec.get("groups", {})
    members: dict[str, tuple[int, ...]] = {}
    for group, fields in raw_groups.items():
        if "members" in fields:
            indices = _resolve_names(fields["members"], lookup, f"{where}: groups.{group}.members", dataset)
            members[group] = tuple(dict.fromkeys(indices))
            for index in indices:
                group_of[index] = group
    known_groups = sorted(set(group_of))
    for group in raw_groups:
        if group not in known_groups:
            raise ConfigError(
                f"{where}: groups.{group}: unknown attribute group {group!r} in {dataset}"
                f"{suggest(group, known_groups)}; groups: {', '.join(known_groups)} "
                "(or give it `members`)"
            )
    askable = np.ones(n, dtype=bool)
    if "ask_groups" in spec:
        for group in spec["ask_groups"]:
            if group not in known_groups:
                raise ConfigError(
                    f"{where}: ask_groups: unknown attribute group {group!r} in {dataset}"
                    f"{suggest(group, known_groups)}; groups: {', '.join(known_groups)}"
                )
        wanted = set(spec["ask_groups"])
        askable &= np.array([g in wanted for g in group_of], dtype=bool)
    never = _resolve_names(spec.get("never", []), lookup, f"{where}: never", dataset)
    askable[never] = False
    fragments = [f.lower() for f in spec.get("never_containing", []) if f]
    if fragments:
        for attribute in catalog.attributes:
            if any(f in attribute.name.lower() for f in fragments):
                askable[attribute.index] = False
    allow = _resolve_names(spec.get("allow", []), lookup, f"{where}: allow", dataset)
    # `allow` re-admits attributes the bank excludes by name, but never outside `ask_groups`.
    in_groups = set(spec["ask_groups"]) if "ask_groups" in spec else set(group_of)
    askable[[a for a in allow if group_of[a] in in_groups]] = True
    weights = np.ones(n, dtype=np.float64)
    for group, weight in spec.get("weights", {}).items():
        if group not in known_groups:
            raise ConfigError(
                f"{where}: weights: unknown attribute group {group!r} in {dataset}"
                f"{suggest(group, known_groups)}; groups: {', '.join(known_groups)}"
            )
        weights[[g == group for g in group_of]] *= weight
    for name, weight in spec.get("attribute_weights", {}).items():
        weights[_resolve_names([name], lookup, f"{where}: attribute_weights", dataset)] *= weight
    groups: dict[str, GroupWording] = {}
    for group in known_groups:
        fields = raw_groups.get(group, {})
        style = fields.get("style", "yesno")
        label = fields.get("label", group.capitalize())
        groups[group] = GroupWording(
            name=group,
            label=label,
            style=style,
            templates=tuple(fields.get("templates", (DEFAULT_TEMPLATE,))),
            question=fields.get("question", ""),
            lowercase=bool(fields.get("lowercase", False)),
            members=members.get(group, ()),
        )
    lower = {g for g, wording in groups.items() if wording.lowercase}
    names = [a.name.lower() if group_of[a.index] in lower else a.name for a in catalog.attributes]
    # A designer's display name is shown as written (no lowercasing: "an IMAX film").
    for name, shown in spec.get("names", {}).items():
        for index in _resolve_names([name], lookup, f"{where}: names", dataset):
            names[index] = shown
    return QuestionRules(
        askable=askable,
        weights=weights,
        max_questions=spec.get("max_questions"),
        group_of=tuple(group_of),
        groups=groups,
        names=tuple(names),
        spec=spec,
    )


def default_rules(catalog: Catalog, dataset_name: str) -> QuestionRules | None:
    """The dataset's packaged bank alone (what the chat uses when no configuration says otherwise)."""
    return resolve_questions({"bank": DEFAULT_BANK}, catalog, dataset_name)
