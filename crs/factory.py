"""Building the parts of a run from settings: the scorer, the policy, the simulated user.

The one place a name in the settings becomes an object: every command (evaluate, compare, sweep,
train, view --why, chat) and every benchmark builds its parts here, so they cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.progress import Progress
from crs.registry import POLICIES, SIMULATORS
from crs.settings import RunSpec

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.env import Policy, SimulatedUser
    from crs.scoring import Scorer
    from crs.types import Catalog


def build_scorer(
    name: str,
    params: Mapping[str, Any],
    dataset: Dataset,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Scorer:
    """A ready scorer ("bpr" is loaded from the cache, or trained and saved)."""
    from crs.scoring import make_scorer

    return make_scorer(name, dataset, cache_dir, progress=progress, **dict(params))


def build_policy(
    name: str,
    params: Mapping[str, Any],
    dataset: Dataset,
    scorer: Scorer,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    retrain: bool = False,
) -> Policy:
    """A registered (or "package.module:Class") policy with its parameters. A policy that learns
    trains or loads what it needs here (`cache_dir`, `progress`, `retrain`: its TrainingContext)."""
    policy_class = POLICIES.get(name)
    kwargs = dict(params)
    if getattr(policy_class, "learns", False):
        from policy.learning import TrainingContext

        kwargs["training"] = TrainingContext(cache_dir, progress, retrain)
    try:
        policy: Policy = policy_class(dataset, scorer, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad parameters for policy {name!r}: {error}") from None
    return policy


def params_of(name: str) -> tuple[str, ...]:
    """The parameters policy `name`'s constructor names (not what a `**kwargs` would take)."""
    return tuple(inspect.signature(POLICIES.get(name)).parameters)


def takes_parameter(name: str, parameter: str) -> bool:
    """Whether policy `name`'s constructor accepts `parameter` (or any keyword). Built-in policies
    all take `questions`; a plug-in may not, and then runs without question rules."""
    signature = inspect.signature(POLICIES.get(name))
    return parameter in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )


def policy_for_run(
    spec: RunSpec,
    dataset: Dataset,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    retrain: bool = False,
) -> Policy:
    """The run's policy with the run's scorer."""
    scorer = build_scorer(spec.scorer, spec.scorer_params, dataset, cache_dir, progress)
    return build_policy(spec.policy, spec.policy_params, dataset, scorer, cache_dir, progress, retrain)


def simulated_user_for(spec: RunSpec, catalog: Catalog, target: int) -> SimulatedUser:
    """The run's simulated user looking for item `target` (index), with the run's answer options.
    Raises ValueError for a target it cannot talk about (no attributes)."""
    from simulators.rule_based import SimulatorOptions

    options = SimulatorOptions(
        answer_noise=spec.answer_noise, dont_know=spec.dont_know, patience=spec.patience
    )
    user: SimulatedUser = SIMULATORS.create(spec.simulator, catalog, target, options)
    return user
