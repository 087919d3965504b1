"""Configuration precedence (flags > file > defaults) and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from crs.config import ConfigError, defaults, load_config
from crs.registry import POLICIES, UnknownNameError


def test_defaults_file_documents_every_policy() -> None:
    config = defaults()
    assert config["evaluate"]["policy"] in POLICIES
    assert set(config["policy"]) == set(POLICIES.names())


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[evaluate]\npolicy = "random"\nseed = 5\nanswer_noise = 1\n')
    config = load_config(file, {"evaluate.seed": 9, "evaluate.workers": None})
    assert config["evaluate"]["policy"] == "random"  # file beats defaults
    assert config["evaluate"]["seed"] == 9  # flag beats file
    assert config["evaluate"]["workers"] == 1  # an unset flag changes nothing
    assert config["evaluate"]["answer_noise"] == 1.0  # ints are accepted where floats are expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[evaluate]\npolicyy = 'x'\n", "unknown setting 'evaluate.policyy'"),
        ("[evaluate]\nseed = 'zero'\n", "must be int"),
        ("[evaluate]\nworkers = true\n", "must be int"),
        ("evaluate = 3\n", "must be a table"),
        ("[evaluate\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(file)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/no/such/file.toml")


def test_unknown_registry_name_lists_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="choose one of: belief, max_entropy"):
        POLICIES.get("nope")
