"""The one registry of plug-ins: policies, simulators and datasets, looked up by name.

Built-in entries are registered as "module:attribute" strings so that importing `crs` never
imports numpy-heavy policies, torch or gradio until one is actually used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    target: str | Callable[..., Any]
    description: str


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str | Callable[..., T], description: str = "") -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, description)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def get(self, name: str) -> Callable[..., T]:
        try:
            entry = self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}"
            ) from None
        if isinstance(entry.target, str):
            module_name, _, attribute = entry.target.partition(":")
            return getattr(importlib.import_module(module_name), attribute)
        return entry.target

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)


POLICIES: Registry[Any] = Registry("policy")
SIMULATORS: Registry[Any] = Registry("simulator")
DATASETS: Registry[Any] = Registry("dataset")

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
    "simulators.rule_based:RuleBasedUser",
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
