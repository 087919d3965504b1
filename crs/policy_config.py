"""Policy configuration files: a registered policy, its parameters and its question rules, in TOML.

```toml
label = "belief, genres only"   # name in reports (default: the file name)
policy = "belief"
[params]                        # override [policy.belief] of crs/defaults.toml
list_size = 5
[questions]                     # question rules and bank overrides (crs.questions)
ask_groups = ["genre"]
max_questions = 6
```

`configs/policy.example.toml` documents every key. A configuration is checked when it is read
(keys, types, the policy's parameter names) and again against a dataset (`check`: attribute groups
and names exist). Every error names the file and the key and lists what is allowed.

`PolicyConfig.policy_params` is what `RunSpec(policy=..., policy_params=...)` takes: the policy's
defaults from `crs/defaults.toml`, the file's `[params]` on top, and the question rules under the
key `questions` (a plain JSON-able dict; every registered policy accepts it). A configuration
without a `[questions]` table has no question rules: the policy behaves exactly as without a file.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.questions import DEFAULT_BANK, NO_BANK, check_questions, resolve_questions
from crs.registry import POLICIES, UnknownNameError, suggest
from crs.settings import ConfigError, check_policy_params, default_tree, read_toml

if TYPE_CHECKING:
    from crs.data import Dataset

TOP_KEYS: dict[str, str] = {
    "label": "name in reports (string)",
    "description": "what the configuration is for (string)",
    "policy": "a registered policy name (string)",
    "params": "policy parameters (table)",
    "questions": "question rules and bank overrides (table)",
}


@dataclass(frozen=True)
class PolicyConfig:
    """One policy configuration (see the module docstring). Frozen: edit with `from_mapping`."""

    label: str
    policy: str
    policy_params: Mapping[str, Any]  # defaults + [params] + {"questions": ...}: give to RunSpec
    params: Mapping[str, Any] = field(default_factory=dict)  # the file's own [params]
    questions: Mapping[str, Any] | None = None  # the file's [questions] (bank as written), or None
    description: str = ""
    source: str = ""  # the file it came from ("" for text from elsewhere)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        source: str = "<config>",
        default_label: str = "",
        base: Path | None = None,
    ) -> PolicyConfig:
        """Check a parsed configuration. `base`: the folder a relative `bank` path is read from."""
        for key in data:
            if key not in TOP_KEYS:
                allowed = ", ".join(TOP_KEYS)
                raise ConfigError(
                    f"{source}: unknown key {key!r}{suggest(key, TOP_KEYS)}; allowed: {allowed}"
                )
        for key in ("label", "description", "policy"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{source}: {key!r} must be a string, got {data[key]!r}")
        policy = data.get("policy")
        if not policy:
            raise ConfigError(f"{source}: 'policy' is missing; choose one of: {', '.join(POLICIES.names())}")
        if policy not in POLICIES:
            raise ConfigError(
                f"{source}: unknown policy {policy!r}{suggest(policy, POLICIES.names())}; "
                f"choose one of: {', '.join(POLICIES.names())} (or package.module:Class)"
            )
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: [params] must be a table of policy parameters")
        if "questions" in params:
            raise ConfigError(f"{source}: [params]: question rules belong in the [questions] table")
        try:
            params = check_policy_params(policy, params, f"{source}: [params]")
        except UnknownNameError as error:  # a package.module:Class policy that does not import
            raise ConfigError(f"{source}: 'policy': {error}") from None
        questions = data.get("questions")
        if questions is not None:
            if not isinstance(questions, Mapping):
                raise ConfigError(f"{source}: [questions] must be a table")
            questions = check_questions(questions, f"{source}: [questions]")
            questions.setdefault("bank", DEFAULT_BANK)
        policy_params: dict[str, Any] = dict(default_tree().get("policy", {}).get(policy, {}))
        policy_params.update(params)
        if questions is not None:
            resolved = dict(questions)
            bank = resolved["bank"]
            if bank not in NO_BANK and bank != DEFAULT_BANK and not Path(bank).is_absolute():
                # A relative bank path is relative to the configuration file, wherever `crs` runs.
                resolved["bank"] = str(((base or Path.cwd()) / bank).resolve())
            policy_params["questions"] = resolved
        return cls(
            label=data.get("label") or default_label or policy,
            policy=policy,
            policy_params=policy_params,
            params=params,
            questions=questions,
            description=data.get("description", ""),
            source=source,
        )

    @classmethod
    def from_toml(
        cls, text: str, source: str = "<config>", default_label: str = "", base: Path | None = None
    ) -> PolicyConfig:
        """A configuration from TOML text (e.g. edited in the lab tab)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source}: not valid TOML ({error})") from None
        return cls.from_mapping(data, source, default_label, base)

    def own_params(self) -> dict[str, Any]:
        """What the file itself sets for the policy: its [params], and its question rules under
        `questions` (bank path resolved) when it has a [questions] table."""
        own = dict(self.params)
        if "questions" in self.policy_params:
            own["questions"] = self.policy_params["questions"]
        return own

    def to_mapping(self) -> dict[str, Any]:
        """The configuration as its file would hold it (only what the file sets)."""
        out: dict[str, Any] = {"label": self.label, "policy": self.policy}
        if self.description:
            out["description"] = self.description
        if self.params:
            out["params"] = dict(self.params)
        if self.questions is not None:
            out["questions"] = json.loads(json.dumps(self.questions))
        return out

    def to_toml(self) -> str:
        """The configuration as TOML text; `from_toml(to_toml())` gives the same configuration."""
        return dumps_toml(self.to_mapping())

    def check(self, dataset: Dataset) -> None:
        """Check the question rules against a dataset: groups and attribute names must exist there."""
        resolve_questions(
            self.policy_params.get("questions"), dataset.catalog, dataset.name, f"{self.source}: [questions]"
        )


def load_policy_config(path: Path) -> PolicyConfig:
    """Read and check a policy configuration file (label defaults to the file name)."""
    path = Path(path)
    data = read_toml(path, "policy config file")
    return PolicyConfig.from_mapping(data, str(path), default_label=path.stem, base=path.parent)


# --- a small TOML writer (the standard library only reads TOML) ---------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _string(text: str) -> str:
    # JSON's escapes are TOML's except surrogate pairs (TOML has none: characters stay as they
    # are), and TOML also refuses a raw DEL, which JSON leaves unescaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def dumps_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """TOML text for nested dicts of plain values: scalars first, then one [table] per top-level
    dict and per dict of dicts (`[questions.groups.decade]`); other dicts are written inline."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        name = f"{prefix}{_key(str(key))}"
        if isinstance(value, Mapping) and not prefix:
            tables.append((name, value))
        elif isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            tables.extend((f"{name}.{_key(str(k))}", v) for k, v in value.items())
        else:
            lines.append(f"{_key(str(key))} = {_value(value)}")
    text = "\n".join(lines)
    for name, value in tables:
        body = dumps_toml(value, f"{name}.")
        text += ("\n\n" if text else "") + f"[{name}]" + ("\n" + body if body else "")
    return text + ("\n" if not prefix else "")
