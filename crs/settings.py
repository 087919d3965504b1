"""Settings: one typed model of every crs setting, loaded in one order, checked by one validator.

Precedence, lowest first: `crs/defaults.toml` (every key documented there) < a file given with
`--config` (same sections and keys) < a policy configuration (`--policy-config`: its policy, its
parameters, its question rules) < command-line flags. `load_settings` applies them in that order
and remembers where each value came from, so an error names the file (or flag) and the key.

Each section is a frozen dataclass whose defaults equal `defaults.toml` (a test holds them
together). Every field is declared with `setting(...)`, whose metadata (allowed choices, bounds)
is read by `check_value`, the one validator; the same declarations serve `RunSpec` and the
simulator options, so a value is checked the same way whether it comes from a file, a flag or
code. Policy and scorer parameters are checked against the plug-in's own constructor
(`check_policy_params`), which knows its keywords and their kinds.

Library code never reads `sys.argv` or the environment for settings: the CLI resolves everything
here and passes typed values down.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

from crs.registry import POLICIES, SIMULATORS, is_import_path, suggest


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message says which and why."""


_MISSING: Any = dataclasses.MISSING


def setting(
    default: Any = _MISSING,
    *,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    nonempty: bool = False,
    default_factory: Callable[[], Any] | None = None,
    problem: Callable[[Any], str] | None = None,
) -> Any:
    """A settings field: its default and what `check_value` allows (choices, inclusive bounds,
    and `problem`: what is wrong with a value, "" when nothing is). `choices` may be a function
    (registries fill up after import: plug-ins, entry points)."""
    metadata = {
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "nonempty": nonempty,
        "problem": problem,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain_types(hint: Any) -> tuple[type, ...]:
    """The plain Python types a field's annotation allows ((int,) for `int`, (int, NoneType) for
    `int | None`); () for containers, which their own code checks."""
    args = typing.get_args(hint)
    options = args if args and typing.get_origin(hint) in (typing.Union, UnionType) else (hint,)
    plain = tuple(option for option in options if option in (int, float, str, bool, NoneType))
    return plain if len(plain) == len(options) else ()


def _describe(types: tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    return " or ".join(names[t] for t in types if t in names) or "a value"


def check_value(cls: type, name: str, value: Any, where: str) -> Any:
    """`value` for field `name` of settings class `cls`, checked (type, choices, bounds) and with
    whole numbers widened to float where a number is wanted. Raises ConfigError naming `where`."""
    spec = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if spec is None:
        known = [f.name for f in dataclasses.fields(cls)]
        raise ConfigError(f"{where}: unknown setting{suggest(name, known)}; known here: {', '.join(known)}")
    types = _plain_types(_hints(cls)[name])
    if types:
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            if not finite(value):
                raise ConfigError(
                    f"{where} must be a finite number, got a whole number of {len(str(value))} digits"
                )
            value = float(value)
        accepted = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not accepted:
            raise ConfigError(f"{where} must be {_describe(types)}, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
    meta = spec.metadata
    choices = meta.get("choices")
    if choices is not None and value is not None:
        allowed = list(choices() if callable(choices) else choices)
        if value not in allowed and not _plugin_path(value, choices):
            raise ConfigError(
                f"{where}: unknown value {value!r}{suggest(str(value), allowed)}; choose one of: "
                + ", ".join(allowed)
            )
    low, high = meta.get("minimum"), meta.get("maximum")
    if value is not None and not isinstance(value, bool) and isinstance(value, int | float):
        if low is not None and high is not None and not low <= value <= high:
            raise ConfigError(f"{where} must be between {low:g} and {high:g}, got {value!r}")
        if low is not None and value < low:
            raise ConfigError(f"{where} must be at least {low:g}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{where} must be at most {high:g}, got {value!r}")
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        raise ConfigError(f"{where} must not be empty")
    problem = meta.get("problem")
    said = problem(value) if problem is not None and value is not None else ""
    if said:
        raise ConfigError(f"{where}: {said}")
    return value


def finite(number: float) -> bool:
    """Whether `number` is a float other than NaN and the infinities, or a whole number a float can
    hold (`math.isfinite` raises OverflowError on a larger one: TOML and JSON allow any size)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _llm_url_problem(url: str) -> str:
    from crs.llm.endpoints import urls_problem  # crs.llm reads these settings: imported when used

    return urls_problem(url)


ENGINES = ("local", "ray")  # what plays an evaluation's conversations (`crs.evaluation.runner`)


def ray_address_parts(address: str) -> tuple[str, str, int] | None:
    """A Ray cluster's address as (scheme, host, port): "HOST:PORT" (the head node's GCS, scheme
    "") or "ray://HOST:PORT" (Ray Client, scheme "ray"); None for "" (start a local Ray instance)
    and "auto" (the cluster this machine runs, or $RAY_ADDRESS). Raises ValueError on others."""
    if address in ("", "auto"):
        return None
    scheme, separator, rest = address.partition("://")
    if not separator:
        scheme, rest = "", address
    host, colon, port = rest.rpartition(":")
    if scheme not in ("", "ray") or not colon or not host or "/" in rest or not port.isdigit():
        raise ValueError(
            f'expected "" (a local Ray instance), "auto", HOST:PORT or ray://HOST:PORT, got {address!r}'
        )
    if not 0 < int(port) < 65536:
        raise ValueError(f"the port must be between 1 and 65535, got {port} in {address!r}")
    return scheme, host.strip("[]"), int(port)


def ray_address_problem(address: str) -> str:
    try:
        ray_address_parts(address)
    except ValueError as error:
        return str(error)
    return ""


def _chroma_url_problem(url: str) -> str:
    from crs.retrieval.server import url_problem  # no chromadb import: only the URL is parsed

    return url_problem(url)


def _plugin_path(value: Any, choices: Any) -> bool:
    """Policies and simulators may also be named "package.module:Class" (plug-ins outside crs)."""
    return choices in (POLICIES.names, SIMULATORS.names) and isinstance(value, str) and is_import_path(value)


def validate(instance: Any, where: str = "") -> None:
    """Check every field of a settings dataclass instance (widened values are written back)."""
    cls = type(instance)
    for spec in dataclasses.fields(cls):
        value = getattr(instance, spec.name)
        checked = check_value(cls, spec.name, value, f"{where or cls.__name__}.{spec.name}")
        if checked is not value:
            object.__setattr__(instance, spec.name, checked)


class Checked:
    """Mixin: a frozen settings dataclass that validates itself when constructed."""

    def __post_init__(self) -> None:
        validate(self)


# --- the sections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSettings(Checked):
    dir: str = setting("")
    dataset: str = setting("lastfm_star", nonempty=True)
    split: str = setting("valid", nonempty=True)
    split_seed: int = setting(0, minimum=0)


@dataclass(frozen=True)
class EvaluateSettings(Checked):
    policy: str = setting("belief", choices=POLICIES.names)
    scorer: str = setting("bpr", choices=("bpr", "popularity"))
    simulator: str = setting("rule", choices=SIMULATORS.names)
    limit: int = setting(0, minimum=0)
    offset: int = setting(0, minimum=0)
    seed: int = setting(0, minimum=0)
    workers: int = setting(1, minimum=1)
    engine: str = setting("local", choices=ENGINES)
    ray_address: str = setting("", problem=lambda address: ray_address_problem(address))
    max_turns: int = setting(15, minimum=2)
    answer_noise: float = setting(0.0, minimum=0.0, maximum=1.0)
    dont_know: float = setting(0.0, minimum=0.0, maximum=1.0)
    patience: int = setting(0, minimum=0)


@dataclass(frozen=True)
class ChatSettings(Checked):
    dataset: str = setting("movielens", nonempty=True)
    policy: str = setting("belief", choices=POLICIES.names)
    scorer: str = setting("bpr", choices=("bpr", "popularity"))
    port: int = setting(0, minimum=0, maximum=65535)
    retriever: bool = setting(True)
    chroma_url: str = setting("", problem=lambda url: _chroma_url_problem(url))
    log_dir: str = setting("")
    session_minutes: float = setting(60.0, minimum=0.01)


@dataclass(frozen=True)
class LLMSettings(Checked):
    backend: str = setting("local", choices=("local", "remote", "none"))
    url: str = setting("http://127.0.0.1:8080/v1", problem=lambda url: _llm_url_problem(url))
    model: str = setting("")
    api_key_env: str = setting("CRS_LLM_API_KEY")
    timeout_s: float = setting(60.0, minimum=0.001)
    retries: int = setting(2, minimum=0)
    concurrency: int = setting(4, minimum=1)
    threads: int = setting(2, minimum=1)
    cache: bool = setting(True)
    temperature: float = setting(0.0, minimum=0.0)


@dataclass(frozen=True)
class LLMUserSettings(Checked):
    """`[simulator.llm]`: the LLM user (`simulators.llm_user`)."""

    mode: str = setting("phrase", choices=("phrase", "decide"))
    behaviour: str = setting("persona", choices=("persona", "protocol"))
    phrasing: str = setting("fixed", choices=("fixed", "seekers"))
    phrasing_temperature: float = setting(0.8, minimum=0.0)
    retry_temperature: float = setting(0.7, minimum=0.0)
    max_tokens: int = setting(40, minimum=4)


@dataclass(frozen=True)
class SimulatorSettings(Checked):
    llm: LLMUserSettings = setting(default_factory=LLMUserSettings)


@dataclass(frozen=True)
class PathsSettings(Checked):
    cache_dir: str = setting("")


SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "evaluate": EvaluateSettings,
    "chat": ChatSettings,
    "llm": LLMSettings,
    "simulator": SimulatorSettings,
    "paths": PathsSettings,
}
PLUGIN_SECTIONS = ("policy", "scorer")  # tables of parameters, one per plug-in name


@dataclass(frozen=True)
class Settings:
    """Every setting of one command, resolved (see the module docstring)."""

    data: DataSettings = field(default_factory=DataSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    paths: PathsSettings = field(default_factory=PathsSettings)
    policy: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [policy.<name>] parameters
    scorer: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [scorer.<name>] parameters
    # The policy configuration file applied, if any: {"label", "source", "text"} (saved with a run).
    policy_config: Mapping[str, str] | None = None

    @property
    def cache_dir(self) -> Path | None:
        return Path(self.paths.cache_dir).expanduser() if self.paths.cache_dir else None

    @property
    def data_dir(self) -> str | None:
        return self.data.dir or None

    def policy_params(self, policy: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.policy.get(policy, {})))

    def scorer_params(self, scorer: str) -> dict[str, Any]:
        return dict(self.scorer.get(scorer, {}))

    def replace(self, section: str, **changes: Any) -> Settings:
        """These settings with fields of one section changed (checked like any other value)."""
        current = getattr(self, section)
        for name, value in changes.items():
            changes[name] = check_value(type(current), name, value, f"{section}.{name}")
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **changes)})

    def with_policy_params(self, policy: str, params: Mapping[str, Any]) -> Settings:
        merged = {**self.policy_params(policy), **params}
        return dataclasses.replace(self, policy={**self.policy, policy: merged})

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as `config.json` of a run folder holds it (and `from_dict` reads back)."""
        out: dict[str, Any] = {
            name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS if name != "simulator"
        }
        out["simulator"] = {"llm": dataclasses.asdict(self.simulator.llm)}
        out["policy"] = copy.deepcopy({k: dict(v) for k, v in self.policy.items()})
        out["scorer"] = copy.deepcopy({k: dict(v) for k, v in self.scorer.items()})
        if self.policy_config is not None:
            out["policy_config"] = dict(self.policy_config)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "settings") -> Settings:
        """Settings from plain data (a run folder's config.json): defaults for what it lacks;
        keys it has that crs does not know (e.g. "resolved") are ignored."""
        known = {key: value for key, value in data.items() if key in SECTIONS or key in PLUGIN_SECTIONS}
        tree = _merge_tree(default_tree(), known, where, {}, strict=False)
        settings = _build(tree, {}, where)
        config = data.get("policy_config")
        return dataclasses.replace(
            settings, policy_config=dict(config) if isinstance(config, Mapping) else None
        )


@dataclass(frozen=True)
class RunSpec(Checked):
    """Everything that determines the numbers of one evaluation run (built from settings by
    `run_spec`; its defaults are those of crs/defaults.toml)."""

    dataset: str = setting("lastfm_star", nonempty=True)
    split: str = setting("valid", nonempty=True)
    policy: str = setting("belief", choices=POLICIES.names)
    policy_params: Mapping[str, Any] = setting(default_factory=dict)
    scorer: str = setting("bpr", choices=("bpr", "popularity"))
    scorer_params: Mapping[str, Any] = setting(default_factory=dict)
    simulator: str = setting("rule", choices=SIMULATORS.names)
    limit: int | None = setting(None, minimum=1)  # first N conversations after `offset`; None = all
    offset: int = setting(0, minimum=0)  # skip the first N shuffled pairs (4000: tuning pairs only)
    seed: int = setting(0, minimum=0)
    # How the conversations are played, never what they give: results are identical for any value.
    workers: int = setting(1, minimum=1)
    engine: str = setting("local", choices=ENGINES)  # local: this machine's processes | ray: Ray tasks
    ray_address: str = setting("", problem=lambda address: ray_address_problem(address))
    max_turns: int = setting(15, minimum=2)
    answer_noise: float = setting(0.0, minimum=0.0, maximum=1.0)
    dont_know: float = setting(0.0, minimum=0.0, maximum=1.0)
    patience: int | None = setting(None, minimum=1)
    trace: bool = setting(False)  # record the actions the policy weighed each turn (policies that can say)
    llm: LLMSettings = setting(default_factory=LLMSettings)  # the LLM user's language model
    llm_user: LLMUserSettings = setting(default_factory=LLMUserSettings)  # the LLM user itself


def run_spec(settings: Settings, trace: bool = False) -> RunSpec:
    """The evaluation run the settings describe (the one place a run is built from settings)."""
    run = settings.evaluate
    return RunSpec(
        dataset=settings.data.dataset,
        split=settings.data.split,
        policy=run.policy,
        policy_params=settings.policy_params(run.policy),
        scorer=run.scorer,
        scorer_params=settings.scorer_params(run.scorer),
        simulator=run.simulator,
        limit=run.limit or None,
        offset=run.offset,
        seed=run.seed,
        workers=run.workers,
        engine=run.engine,
        ray_address=run.ray_address,
        max_turns=run.max_turns,
        answer_noise=run.answer_noise,
        dont_know=run.dont_know,
        patience=run.patience or None,
        trace=trace,
        llm=settings.llm,
        llm_user=settings.simulator.llm,
    )


# --- loading --------------------------------------------------------------------------------------


def default_tree() -> dict[str, Any]:
    """crs/defaults.toml as plain data (a fresh copy: callers merge into it)."""
    return copy.deepcopy(_defaults_file())


@cache
def _defaults_file() -> dict[str, Any]:
    text = resources.files("crs").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def _merge_tree(
    base: dict[str, Any],
    update: Mapping[str, Any],
    origin: str,
    origins: dict[str, str],
    prefix: str = "",
    strict: bool = True,
) -> dict[str, Any]:
    """`update` merged into `base` (in place, also returned); every key set records `origin`.
    Unknown keys are refused, except inside the plug-in tables (their plug-in checks them)."""
    for key, value in update.items():
        where = f"{prefix}{key}"
        plugin_table = prefix.split(".")[0] in PLUGIN_SECTIONS if prefix else key in PLUGIN_SECTIONS
        if key not in base and not plugin_table:
            if not strict:
                continue
            known = sorted(base)
            raise ConfigError(
                f"{origin}: unknown setting {where!r}{suggest(str(key), known)} "
                f"(known here: {', '.join(known)})"
            )
        # A table where a plug-in's parameter holds a plain value replaces it (and its plug-in's
        # check says what kind it must be); merging into the plain value would fail.
        new_table = plugin_table and isinstance(value, Mapping) and key not in base
        if isinstance(base.get(key), dict) or new_table:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: {where!r} must be a table of settings, got {value!r}")
            base.setdefault(key, {})
            if new_table:  # a plug-in parameter that is a table (even an empty one) came from here
                origins[where] = origin
            _merge_tree(base[key], value, origin, origins, f"{where}.", strict)
            continue
        base[key] = value
        origins[where] = origin
    return base


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _section(cls: type, data: Mapping[str, Any], origins: Mapping[str, str], prefix: str, where: str) -> Any:
    kwargs: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            continue
        key = f"{prefix}{spec.name}"
        value = data[spec.name]
        hint = _hints(cls)[spec.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a nested table: [simulator.llm]
            kwargs[spec.name] = _section(hint, value, origins, f"{key}.", where)
            continue
        origin = origins.get(key, where)
        # A value from a flag is named by the flag; one from a file by the file and its key.
        named = origin if origin.startswith("--") else f"{origin}: {key}"
        kwargs[spec.name] = check_value(cls, spec.name, value, named)
    return cls(**kwargs)


def _build(tree: Mapping[str, Any], origins: Mapping[str, str], where: str) -> Settings:
    sections = {
        name: _section(cls, tree.get(name, {}), origins, f"{name}.", where) for name, cls in SECTIONS.items()
    }
    plugins = {}
    for name in PLUGIN_SECTIONS:
        table = tree.get(name, {})
        for plugin, params in table.items():
            if not isinstance(params, Mapping):
                origin = origins.get(f"{name}.{plugin}", where)
                raise ConfigError(
                    f"{origin}: [{name}.{plugin}] must be a table of parameters, got {params!r}"
                )
        plugins[name] = {plugin: dict(params) for plugin, params in table.items()}
    for plugin, params in list(plugins["policy"].items()):
        # Parameters someone set (a file, a flag) are checked against the policy's constructor;
        # defaults.toml's own are held to the constructors by a test, and checking them here
        # would import every policy at every start.
        if any(f"policy.{plugin}.{key}" in origins for key in params) and plugin in POLICIES:
            plugins["policy"][plugin] = check_policy_params(
                plugin, params, f"{where}: [policy.{plugin}]", origins, f"policy.{plugin}."
            )
    return Settings(**sections, policy=plugins["policy"], scorer=plugins["scorer"])


def load_settings(
    file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
    policy_config: Any | None = None,
    policy_section: str = "evaluate",
    params: Sequence[tuple[str, Any]] = (),
) -> Settings:
    """Defaults < `file` < `policy_config` (a `crs.policy_config.PolicyConfig`, for the policy of
    `policy_section`) < `overrides` ({"evaluate.policy": "random", ...}; None values skipped)
    < `params` (NAME=VALUE parameters of that policy). `flags` names the command-line flag of an
    override key ({"evaluate.limit": "--limit"}), for errors."""
    origins: dict[str, str] = {}
    tree = default_tree()
    if file is not None:
        _merge_tree(tree, read_toml(Path(file)), str(file), origins)
    flag_origins = dict(flags or {})
    if policy_config is not None:
        flag_policy = (overrides or {}).get(f"{policy_section}.policy")
        if flag_policy and flag_policy != policy_config.policy:
            raise ConfigError(
                f"--policy {flag_policy} conflicts with {policy_config.source}, which configures policy "
                f"{policy_config.policy!r}"
            )
        source = policy_config.source or "policy configuration"
        _merge_tree(tree, {policy_section: {"policy": policy_config.policy}}, source, origins)
        _merge_tree(
            tree, {"policy": {policy_config.policy: dict(policy_config.own_params())}}, source, origins
        )
    for key, value in (overrides or {}).items():
        if value is not None:
            _merge_tree(tree, _nest({key: value}), flag_origins.get(key, "command line"), origins)
    policy = tree[policy_section]["policy"]
    if params:
        _merge_tree(tree, {"policy": {policy: dict(params)}}, "--param", origins)
    settings = _build(tree, origins, "defaults")
    if policy_config is not None:
        settings = dataclasses.replace(
            settings,
            policy_config={
                "label": policy_config.label,
                "source": policy_config.source,
                "text": policy_config.to_toml(),
            },
        )
    return settings


# --- plug-in parameters ---------------------------------------------------------------------------

# Constructor arguments that are not settings: given by the runner, or by a policy's [questions].
NOT_PARAMETERS = ("self", "dataset", "scorer", "training", "questions")


def policy_parameters(policy: str) -> dict[str, Any]:
    """A policy's settable parameters and their defaults: its constructor's keywords, with the
    values of `[policy.<name>]` in crs/defaults.toml where that section sets them."""
    signature = inspect.signature(POLICIES.get(policy))
    found = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in NOT_PARAMETERS
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    found.update(default_tree().get("policy", {}).get(policy, {}))
    return found


def _same_kind(value: Any, default: Any) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return number(value) and finite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple) and all(number(v) and finite(v) for v in value)
    return True


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "a boolean"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a finite number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list | tuple):
        return "a list of finite numbers"
    return "a value"


def check_policy_params(
    policy: str,
    params: Mapping[str, Any],
    where: str,
    origins: Mapping[str, str] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """`params` of `policy` checked against its constructor: known names, values of the kind of
    the default (whole numbers widened to float where a number is wanted). `questions` is a
    policy's question rules, checked by `crs.questions`."""
    known = policy_parameters(policy)
    out: dict[str, Any] = {}
    for name, value in params.items():
        origin = (origins or {}).get(f"{prefix}{name}")
        here = f"{origin}: [policy.{policy}]" if origin and origin != "--param" else where
        if origin == "--param":
            here = f"--param {name}"
        if name == "questions":
            out[name] = value
            continue
        if name not in known:
            raise ConfigError(
                f"{here}: unknown parameter {name!r} of policy {policy!r}{suggest(name, known)}; "
                f"allowed: {', '.join(known)}"
            )
        if not _same_kind(value, known[name]):
            raise ConfigError(
                f"{here}: {name!r} must be {_kind(known[name])} (default {known[name]!r}), got {value!r}"
            )
        out[name] = float(value) if isinstance(known[name], float) else value
    return out
