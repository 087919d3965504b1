"""Settings: one typed model, precedence defaults < --config < policy config < flags, one validator,
and constructor defaults that equal crs/defaults.toml."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from crs.policy_config import PolicyConfig
from crs.registry import POLICIES, UnknownNameError
from crs.settings import (
    SECTIONS,
    ConfigError,
    RunSpec,
    Settings,
    default_tree,
    load_settings,
    run_spec,
)


def test_defaults_file_documents_every_policy() -> None:
    tree = default_tree()
    assert tree["evaluate"]["policy"] in POLICIES
    assert set(tree["policy"]) == {entry.name for entry in POLICIES if entry.origin == "built-in"}


def test_every_section_default_equals_the_defaults_file() -> None:
    """The dataclass defaults and crs/defaults.toml are one set of defaults, written twice: they
    must say the same thing (a drift here silently changes what code without settings runs)."""
    tree = default_tree()
    for name, cls in SECTIONS.items():
        built = dataclasses.asdict(cls())
        assert built == tree[name], name
    loaded = load_settings()  # the file itself, through the loader and the validator
    assert all(getattr(loaded, name) == getattr(Settings(), name) for name in SECTIONS)


def test_run_spec_defaults_equal_the_defaults_file() -> None:
    spec, tree = RunSpec(), default_tree()
    assert (spec.dataset, spec.split) == (tree["data"]["dataset"], tree["data"]["split"])
    for key in (
        "policy",
        "scorer",
        "simulator",
        "offset",
        "seed",
        "workers",
        "max_turns",
        "answer_noise",
        "dont_know",
    ):
        assert getattr(spec, key) == tree["evaluate"][key], key
    assert spec.limit is None and tree["evaluate"]["limit"] == 0  # 0 in the file means "all"
    assert spec.patience is None and tree["evaluate"]["patience"] == 0  # 0 in the file means "never"
    built = run_spec(load_settings())
    assert dataclasses.replace(built, policy_params={}, scorer_params={}) == spec


@pytest.mark.parametrize("name", [entry.name for entry in POLICIES if entry.origin == "built-in"])
def test_policy_constructor_defaults_equal_the_defaults_file(name: str) -> None:
    signature = inspect.signature(POLICIES.get(name))
    table = default_tree()["policy"][name]
    for key, value in table.items():
        default = signature.parameters[key].default
        expected = tuple(value) if isinstance(default, tuple) else value
        assert default == expected, f"[policy.{name}] {key}: constructor {default!r}, defaults.toml {value!r}"


def test_scorer_defaults_equal_the_defaults_file() -> None:
    from crs.scoring.bpr import BprConfig

    table = default_tree()["scorer"]["bpr"]
    assert dataclasses.asdict(BprConfig()) == table


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[evaluate]\npolicy = "random"\nseed = 5\nanswer_noise = 1\n[policy.random]\nlist_size = 7\n'
    )
    settings = load_settings(file, {"evaluate.seed": 9, "evaluate.workers": None})
    assert settings.evaluate.policy == "random"  # file beats defaults
    assert settings.evaluate.seed == 9  # flag beats file
    assert settings.evaluate.workers == 1  # an unset flag changes nothing
    assert settings.evaluate.answer_noise == 1.0 and isinstance(settings.evaluate.answer_noise, float)
    assert settings.policy_params("random") == {"list_size": 7}
    # A policy configuration sits between the file and the flags; --param wins over both.
    config = PolicyConfig.from_mapping({"policy": "random", "params": {"list_size": 5}}, "p.toml")
    layered = load_settings(file, {"evaluate.seed": 1}, policy_config=config, params=[("list_size", 3)])
    assert layered.policy_params("random")["list_size"] == 3
    assert load_settings(file, policy_config=config).policy_params("random")["list_size"] == 5
    assert load_settings(file, policy_config=config).policy_config is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[evaluate]\npolicyy = 'x'\n", "unknown setting 'evaluate.policyy' (did you mean 'policy'?)"),
        ("[evaluate]\nseed = 'zero'\n", "bad.toml: evaluate.seed must be a whole number, got str 'zero'"),
        ("[evaluate]\nworkers = true\n", "evaluate.workers must be a whole number"),
        (
            "[evaluate]\nanswer_noise = 1.5\n",
            "bad.toml: evaluate.answer_noise must be between 0 and 1, got 1.5",
        ),
        ("[evaluate]\ndont_know = -0.1\n", "evaluate.dont_know must be between 0 and 1"),
        ("[evaluate]\npatience = -3\n", "evaluate.patience must be at least 0, got -3"),
        ("[evaluate]\nseed = -1\n", "evaluate.seed must be at least 0, got -1"),
        ("[evaluate]\npolicy = 'belif'\n", "unknown value 'belif' (did you mean 'belief'?)"),
        ("[llm]\nbackend = 'gpt'\n", "llm.backend: unknown value 'gpt'"),
        ("[policy.belief]\nlist_size = 'abc'\n", "'list_size' must be an integer"),
        ("[policy.belief]\nlist_siz = 5\n", "unknown parameter 'list_siz' of policy 'belief' (did you mean"),
        ("evaluate = 3\n", "must be a table"),
        ("[evaluate\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(file)
    assert message in str(raised.value)
    assert "bad.toml" in str(raised.value)


def test_flags_are_checked_like_files_and_named_as_flags() -> None:
    flags = {"evaluate.answer_noise": "--answer-noise", "evaluate.seed": "--seed"}
    with pytest.raises(ConfigError, match="--answer-noise must be between 0 and 1, got 2.0"):
        load_settings(overrides={"evaluate.answer_noise": 2.0}, flags=flags)
    with pytest.raises(ConfigError, match="--seed must be at least 0"):
        load_settings(overrides={"evaluate.seed": -1}, flags=flags)
    with pytest.raises(ConfigError, match="--param list_size: 'list_size' must be an integer"):
        load_settings(params=[("list_size", "abc")])


def test_code_gets_the_same_checks() -> None:
    with pytest.raises(ConfigError, match="RunSpec.answer_noise must be between 0 and 1"):
        RunSpec(answer_noise=1.5)
    with pytest.raises(ConfigError, match="RunSpec.limit must be at least 1"):
        RunSpec(limit=0)
    assert RunSpec(answer_noise=1).answer_noise == 1.0


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/no/such/file.toml")


def test_settings_round_trip_through_a_run_folder() -> None:
    settings = load_settings(overrides={"evaluate.policy": "random", "evaluate.limit": 3})
    assert Settings.from_dict({**settings.as_dict(), "resolved": {"x": 1}}) == settings


def test_unknown_registry_name_lists_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="choose one of: belief, max_entropy"):
        POLICIES.get("nope")
