"""Policy configuration files and question banks: validation, every policy honouring the rules,
weights, the chat's wording and multiple-choice questions, and `crs evaluate --policy-config`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crs.cli import main
from crs.data import Dataset
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.policy_config import PolicyConfig, load_policy_config
from crs.questions import default_rules, resolve_questions
from crs.registry import POLICIES
from crs.scoring import PopularityScorer
from crs.settings import ConfigError
from crs.tracker import update
from crs.types import Ask, InformReply, User, new_state

REPO = Path(__file__).resolve().parents[1]
# Fast settings for policies that learn (the rules, not the learning, are under test here).
FAST: dict[str, dict[str, Any]] = {"belief": {"use_prior": False}, "scpr_rl": {"episodes": 200}}
# scpr_walk's mass rule recommends early on MovieLens; 1.0 makes it ask, to compare its questions.
ASKING: dict[str, dict[str, Any]] = {**FAST, "scpr_walk": {"recommend_mass": 1.0}}


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('policy = "belif"', ["unknown policy 'belif'", "did you mean 'belief'", "choose one of"]),
        ('policy = "belief"\nlable = "x"', ["unknown key 'lable'", "did you mean 'label'"]),
        ('label = "x"', ["'policy' is missing"]),
        ('policy = "belief"\n[params]\nlist_sise = 5', ["unknown parameter 'list_sise'", "'list_size'"]),
        ('policy = "belief"\n[params]\nlist_size = "five"', ["'list_size' must be an integer", "'five'"]),
        ('policy = "belief"\n[questions]\nnevr = []', ["[questions]: unknown key 'nevr'", "'never'"]),
        ('policy = "belief"\n[questions]\nmax_questions = "6"', ["'max_questions' must be a integer"]),
        ('policy = "belief"\n[questions]\nmax_questions = -1', ["'max_questions' must be 0 or more"]),
        ('policy = "belief"\n[questions]\nweights = { tag = -1 }', ["weights.tag must be a finite number"]),
        (
            'policy = "belief"\n[questions.groups.tag]\nstyle = "multiple"',
            ["groups.tag: style must be one of yesno, choice"],
        ),
        (
            'policy = "belief"\n[questions.groups.tag]\ntemplates = ["Do you like {tag}?"]',
            ["only the placeholder {name}"],
        ),
        ('policy = "belief"\n[params]\nquestions = {}', ["belong in the [questions] table"]),
        ('policy = "belief"\n[params', ["not valid TOML"]),
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_policy_config(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    "questions, expected",
    [
        (
            'ask_groups = ["genre"]',
            ["ask_groups: unknown attribute group 'genre' in lastfm_star", "groups: decade, tag"],
        ),
        (
            'never = ["seen liv"]',
            ["never: unknown attribute 'seen liv' in lastfm_star", "did you mean 'seen live'"],
        ),
        ("weights = { tags = 2.0 }", ["weights: unknown attribute group 'tags'", "did you mean 'tag'"]),
        ('bank = "missing.toml"', ["question bank not found"]),
    ],
)
def test_names_are_checked_against_the_dataset(
    tmp_path: Path, lastfm_star: Dataset, questions: str, expected: list[str]
) -> None:
    config = load_policy_config(write(tmp_path, f'policy = "max_entropy"\n[questions]\n{questions}\n'))
    with pytest.raises(ConfigError) as error:
        config.check(lastfm_star)
    for part in expected:
        assert part in str(error.value), str(error.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="policy config file not found"):
        load_policy_config(Path("no/such/config.toml"))


def test_shipped_configs_load_round_trip_and_fit_movielens(movielens_dataset: Dataset) -> None:
    files = sorted((REPO / "configs").glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        config = load_policy_config(path)
        config.check(movielens_dataset)
        again = PolicyConfig.from_toml(config.to_toml(), str(path), base=path.parent)
        assert again == config
    example = load_policy_config(REPO / "configs" / "policy.example.toml")
    assert example.policy_params["questions"]["groups"]["decade"]["style"] == "choice"
    assert load_policy_config(REPO / "configs" / "belief.toml").label == "belief (default)"


def test_config_builds_the_configured_policy(tmp_path: Path, lastfm_star: Dataset) -> None:
    path = write(
        tmp_path,
        'policy = "scpr_walk"\n[params]\nlist_size = 5\nrecommend_mass = 0.5\n'
        "[questions]\nmax_questions = 2\n",
    )
    config = load_policy_config(path)
    assert config.label == "config" and config.policy_params["temperature"] == 1.0  # defaults.toml
    spec = RunSpec(
        dataset="lastfm_star", policy=config.policy, policy_params=config.policy_params, scorer="popularity"
    )
    policy: Any = policy_for_run(spec, lastfm_star)
    assert policy.list_size == 5 and policy.recommend_mass == 0.5
    assert policy.question_rules.max_questions == 2
    assert not policy.question_rules.askable[
        lastfm_star.catalog.attribute_index(_id(lastfm_star, "seen live"))
    ]


def _attribute(attribute_id: int | str | None) -> int | str:
    assert attribute_id is not None
    return attribute_id


def _id(dataset: Dataset, name: str) -> int | str:
    return next(a.id for a in dataset.catalog.attributes if a.name == name)


# --- the rules in every policy ----------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_policy_honours_the_question_rules(name: str, lastfm_star: Dataset) -> None:
    catalog = lastfm_star.catalog
    popular = [
        a.name for a in sorted(catalog.attributes, key=lambda a: -len(catalog.index.items_with(a.index)))
    ]
    questions = {"bank": "default", "never": popular[:8], "max_questions": 3}
    rules = resolve_questions(questions, catalog, lastfm_star.name)
    assert rules is not None and not rules.askable[catalog.attribute_index(_id(lastfm_star, "seen live"))]
    params = {**FAST.get(name, {}), "questions": questions}
    spec = RunSpec(dataset="lastfm_star", policy=name, policy_params=params, scorer="popularity", limit=30)
    result = evaluate(spec, lastfm_star, policy_for_run(spec, lastfm_star))
    asked_total = 0
    for record in result.records:
        asked = [catalog.attribute_index(_attribute(t.attribute)) for t in record.turns if t.act == "ask"]
        assert all(rules.askable[a] for a in asked), [catalog.attributes[a].name for a in asked]
        assert len(asked) <= 3
        asked_total += len(asked)
    assert asked_total > 0, "no question was asked at all: the check would be vacuous"


@pytest.mark.parametrize("name", ["belief", "max_entropy", "scpr_walk", "fact_tree", "random"])
def test_ask_groups_restrict_questions_to_a_group(name: str, movielens_dataset: Dataset) -> None:
    catalog = movielens_dataset.catalog
    params = {**FAST.get(name, {}), "questions": {"bank": "default", "ask_groups": ["genre"]}}
    spec = RunSpec(dataset="movielens", policy=name, policy_params=params, scorer="popularity", limit=15)
    result = evaluate(spec, movielens_dataset, policy_for_run(spec, movielens_dataset))
    groups = {
        catalog.attributes[catalog.attribute_index(_attribute(t.attribute))].group
        for r in result.records
        for t in r.turns
        if t.act == "ask"
    }
    assert groups == {"genre"}, groups


def _opening(dataset: Dataset, name: str) -> Any:
    attribute = catalog_index(dataset, name)
    user = next(iter(dataset.splits["valid"].by_user))
    return update(new_state(dataset.user(user)), None, InformReply((attribute,)))


def catalog_index(dataset: Dataset, name: str) -> int:
    return next(a.index for a in dataset.catalog.attributes if a.name == name)


@pytest.mark.parametrize("name", ["belief", "max_entropy", "scpr_walk"])
def test_weights_change_which_question_is_asked(name: str, movielens_dataset: Dataset) -> None:
    scorer = PopularityScorer(movielens_dataset)
    state = _opening(movielens_dataset, "Comedy")

    def question(questions: dict[str, Any] | None) -> int:
        policy = POLICIES.create(name, movielens_dataset, scorer, **ASKING.get(name, {}), questions=questions)
        action = policy.act(state, np.random.default_rng(0))
        assert isinstance(action, Ask), action
        return action.attribute

    plain = question(None)
    group = movielens_dataset.catalog.attributes[plain].group
    other = next(g for g in ("genre", "decade", "tag") if g != group)
    weighted = question({"weights": {group: 0.01, other: 3.0}})
    assert weighted != plain
    assert movielens_dataset.catalog.attributes[weighted].group == other
    assert question({"weights": {group: 1.0}}) == plain  # unit weights change nothing


def test_no_rules_and_empty_rules_are_the_same_policy(lastfm_star: Dataset) -> None:
    scorer = PopularityScorer(lastfm_star)
    empty: tuple[dict[str, Any] | None, ...] = (None, {})
    for questions in empty:
        policy: Any = POLICIES.create("belief", lastfm_star, scorer, use_prior=False, questions=questions)
        assert policy.question_rules is None


# --- the chat -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_bot(movielens_dataset: Dataset) -> Any:
    from crs.chat import ChatBot
    from crs.language.understanding import Understander

    questions = {
        "bank": "default",
        "groups": {"genre": {"templates": ["Fancy some {name} tonight?"]}},
        "names": {"Film-Noir": "noir"},
    }
    policy = POLICIES.create(
        "belief", movielens_dataset, PopularityScorer(movielens_dataset), use_prior=False, questions=questions
    )
    rules = resolve_questions(questions, movielens_dataset.catalog, movielens_dataset.name)
    return ChatBot(movielens_dataset, policy, Understander(movielens_dataset.catalog), questions=rules)


def test_chat_wording_uses_the_bank_templates(chat_bot: Any, movielens_dataset: Dataset) -> None:
    comedy, noir = catalog_index(movielens_dataset, "Comedy"), catalog_index(movielens_dataset, "Film-Noir")
    assert chat_bot.question(comedy) == "Fancy some comedy tonight?"
    assert chat_bot.question(noir) == "Fancy some noir tonight?"
    tag = catalog_index(movielens_dataset, "time travel")
    assert chat_bot.question(tag) in {
        t.format(name="time travel") for t in chat_bot.questions.group(tag).templates
    }
    rules = default_rules(movielens_dataset.catalog, "movielens")
    assert rules is not None and rules.question(comedy, random.Random(0)).endswith("comedy?")


def test_choice_questions_in_the_chat(chat_bot: Any, movielens_dataset: Dataset) -> None:
    from crs.chat import ChatSession
    from ui.app import click, options

    nineties, noughties = (catalog_index(movielens_dataset, d) for d in ("1990s", "2000s"))
    state = update(
        new_state(User("web"), 40), None, InformReply((catalog_index(movielens_dataset, "Comedy"),))
    )
    session = ChatSession(state=state, pending=Ask(nineties)).say("assistant", chat_bot.question(nineties))
    assert session.messages[-1].text == "Which decade?"
    buttons = options(chat_bot, session)
    labels = [b["label"] for b in buttons]
    assert labels[-1] == "Don't care" and "1990s" in labels and "2000s" in labels and "Yes" not in labels
    assert labels[:-1] == sorted(labels[:-1])  # the decades in order
    other = click(chat_bot, session, f"choice:{noughties}")
    assert noughties in other.state.accepted_attributes and nineties in other.state.rejected_attributes
    same = click(chat_bot, session, f"choice:{nineties}")
    assert nineties in same.state.accepted_attributes and noughties not in same.state.rejected_attributes
    comedy = catalog_index(movielens_dataset, "Comedy")
    refused = click(chat_bot, session, f"choice:{comedy}")  # not a decade: nothing is recorded
    assert refused.state == session.state and "not one of the choices" in refused.messages[-1].text


def test_the_chat_never_asks_a_banned_attribute(movielens_dataset: Dataset) -> None:
    from crs.chat import ChatBot
    from crs.language.understanding import Understander

    # Without rules this dialogue asks 1990s, 2000s, 1980s, 2010s, Romance, 1970s, 1960s, Drama:
    # banning three of those must change the questions.
    banned = {"1990s", "2000s", "Romance"}
    questions = {"bank": "default", "never": sorted(banned)}
    rules = resolve_questions(questions, movielens_dataset.catalog, movielens_dataset.name)
    policy = POLICIES.create(
        "belief", movielens_dataset, PopularityScorer(movielens_dataset), use_prior=False, questions=questions
    )
    bot = ChatBot(movielens_dataset, policy, Understander(movielens_dataset.catalog), questions=rules)
    session = bot.handle_text(bot.start(), "a comedy")
    asked = []
    for _ in range(8):
        assert isinstance(session.pending, Ask), session.pending
        asked.append(movielens_dataset.catalog.attributes[session.pending.attribute].name)
        session = bot.handle_text(session, "no")
    assert not set(asked) & banned, asked


# --- the command line -------------------------------------------------------------------------------


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / name
    argv = ["evaluate", "--dataset", "lastfm_star", "--limit", "100", "--scorer", "popularity"]
    argv += ["--param", "use_prior=false", "--quiet", "--out", str(out), *extra]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    transcripts = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    for record in transcripts:  # decision times are measured, not computed
        for turn in record["turns"]:
            turn.pop("decision_ms", None)
    return metrics, transcripts


TIMINGS = ("seconds", "conversations_per_second", "decision_ms_p50", "decision_ms_p95")


def test_evaluate_with_an_empty_config_is_bit_identical(tmp_path: Path) -> None:
    empty = write(tmp_path, 'policy = "belief"\n', "empty.toml")
    plain_metrics, plain = _run(tmp_path, "plain")
    config_metrics, configured = _run(tmp_path, "configured", "--policy-config", str(empty))
    assert {k: v for k, v in plain_metrics.items() if k not in TIMINGS} == {
        k: v for k, v in config_metrics.items() if k not in TIMINGS
    }
    assert plain == configured
    saved = json.loads((tmp_path / "configured" / "config.json").read_text())
    assert saved["policy_config"]["label"] == "empty"


def test_evaluate_with_question_rules_end_to_end(tmp_path: Path, lastfm_star: Dataset) -> None:
    config = write(
        tmp_path,
        'label = "no seen live"\npolicy = "max_entropy"\n[questions]\nnever = ["rock"]\nmax_questions = 2\n',
    )
    out = tmp_path / "run"
    argv = ["evaluate", "--dataset", "lastfm_star", "--limit", "20", "--scorer", "popularity", "--quiet"]
    assert main([*argv, "--policy-config", str(config), "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["evaluate"]["policy"] == "max_entropy"
    assert saved["policy"]["max_entropy"]["questions"]["never"] == ["rock"]
    banned = {"rock", "seen live"}
    for line in (out / "transcripts.jsonl").read_text().splitlines():
        asks = [t for t in json.loads(line)["turns"] if t["act"] == "ask"]
        assert len(asks) <= 2
        names = {
            lastfm_star.catalog.attributes[lastfm_star.catalog.attribute_index(t["attribute"])].name
            for t in asks
        }
        assert not names & banned


def test_evaluate_reports_config_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, 'policy = "belief"\n[questions]\nnever = ["seen liv"]\n')
    argv = ["evaluate", "--dataset", "lastfm_star", "--limit", "5", "--scorer", "popularity", "--quiet"]
    assert main([*argv, "--policy-config", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "did you mean 'seen live'" in err[0]
    assert main([*argv, "--policy", "random", "--policy-config", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "conflicts with" in capsys.readouterr().err
