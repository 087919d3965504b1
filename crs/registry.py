"""The one registry of plug-ins: policies, simulators and datasets, looked up by name.

Built-in entries are registered as "module:attribute" strings so that importing `crs` never
imports numpy-heavy policies, torch or gradio until one is actually used. Plug-ins from outside
crs need no change to it, as Gymnasium environments need none to Gymnasium:
- a name of the form "package.module:Class" is imported when asked for
  (`crs evaluate --policy mypackage.policies:MyPolicy`);
- an installed package can declare entry points in the groups `crs.policies`, `crs.simulators`
  and `crs.datasets` (`[project.entry-points."crs.policies"] mine = "mypackage.policies:MyPolicy"`);
  they are picked up the first time a registry is asked for its names. A plug-in never replaces
  a built-in of the same name.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def suggest(word: str, choices: Iterable[str], limit: int = 3) -> str:
    """ " (did you mean 'x' or 'y'?)" for the closest choices, or "" when none is close."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=limit, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?)"


def is_import_path(name: str) -> bool:
    """Whether `name` names a plug-in by where it lives: "package.module:Attribute"."""
    module, sep, attribute = name.partition(":")
    return bool(sep and module and attribute.isidentifier())


@dataclass(frozen=True)
class Entry:
    name: str
    target: str | Callable[..., Any]
    description: str
    origin: str = "built-in"  # or the distribution that declared the entry point


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = False

    def register(
        self, name: str, target: str | Callable[..., T], description: str = "", origin: str = "built-in"
    ) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, description, origin)

    def _load_plugins(self) -> None:
        """Entry points of installed packages, once; a name already taken is left to its owner."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.entry_point_group):
            if point.name not in self._entries:
                origin = point.dist.name if point.dist is not None else "entry point"
                self._entries[point.name] = Entry(point.name, point.value, f"plug-in from {origin}", origin)

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._load_plugins()
        return name in self._entries or is_import_path(name)

    def __iter__(self) -> Iterator[Entry]:
        self._load_plugins()
        return iter(list(self._entries.values()))

    def get(self, name: str) -> Callable[..., T]:
        self._load_plugins()
        entry = self._entries.get(name)
        if entry is None and is_import_path(name):
            entry = Entry(name, name, "", "import path")
        if entry is None:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, self._entries)}; choose one of: "
                f"{', '.join(self._entries)} (or give package.module:Class)"
            )
        if not isinstance(entry.target, str):
            return entry.target
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise UnknownNameError(f"{self.kind} {name!r}: cannot import {module_name!r} ({error})") from None
        try:
            target: Callable[..., T] = getattr(module, attribute)
        except AttributeError:
            raise UnknownNameError(
                f"{self.kind} {name!r}: module {module_name!r} has no {attribute!r}"
            ) from None
        if not callable(target):
            raise UnknownNameError(f"{self.kind} {name!r}: {entry.target} is not a class or function")
        return target

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)


POLICIES: Registry[Any] = Registry("policy", "crs.policies")
SIMULATORS: Registry[Any] = Registry("simulator", "crs.simulators")
DATASETS: Registry[Any] = Registry("dataset", "crs.datasets")

POLICIES.register(
    "belief",
    "policy.belief:BeliefPolicy",
    "Bayesian belief over items (learned prior, noisy answers); asks the most informative question "
    "or recommends, whichever is expected to find the item sooner",
)
POLICIES.register(
    "max_entropy",
    "policy.max_entropy:MaxEntropyPolicy",
    "ask the attribute that best splits the items consistent with every answer",
)
POLICIES.register(
    "scpr_walk",
    "policy.scpr_walk:ScprWalkPolicy",
    "SCPR-style walk: ask reachable attributes by weighted entropy, filter on yes only",
)
POLICIES.register(
    "scpr_rl",
    "policy.scpr_rl:ScprRlPolicy",
    "SCPR-style walk whose ask/recommend switch is a small policy network trained by RL",
)
POLICIES.register(
    "fact_tree",
    "policy.fact_tree:FactTreePolicy",
    "FacT-CRS-style decision tree of questions learned offline, recommending at its leaves",
)
POLICIES.register(
    "random",
    "policy.random_question:RandomQuestionPolicy",
    "ask a random attribute of the remaining candidates",
)

SIMULATORS.register(
    "rule",
    "simulators.wrappers:simulated_user",
    "the standard binary-question simulated user (SCPR/UNICORN protocol)",
)
SIMULATORS.register(
    "llm",
    "simulators.llm_user:LLMUser",
    "a user who talks (LLM words, decisions from code or the model) with the whole chat",
)

DATASETS.register("lastfm", "crs.data.loaders:load_lastfm", "LastFM, 33 coarse attributes (SCPR release)")
DATASETS.register("lastfm_star", "crs.data.loaders:load_lastfm_star", "LastFM*, 8,438 tags (SCPR release)")
DATASETS.register(
    "movielens", "crs.data.loaders:load_movielens", "MovieLens ml-latest-small: genres, decades and user tags"
)
DATASETS.register(
    "redial",
    "crs.data.loaders:load_redial",
    "ReDial: 6,924 movies and real recommendation dialogues (genres, decades, directors, cast)",
)
