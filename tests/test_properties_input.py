"""Every bad input answered: generated inputs (1,000 or more per target, derandomised so CI sees the
same cases every run) for what people type or hand to `crs`. Each case must give a sensible,
well-formed result or the project's one-line error, never a traceback.

1. Chat messages, read by the rule-based understander and `read_message`, with and without a
   pending question, on MovieLens (the chat's catalog) and LastFM*: real titles, attribute names,
   negations and numbers mixed with arbitrary unicode, control characters and very long text.
2. Policy configuration files (`--policy-config`, the lab's editor): TOML with wrong types, unknown
   keys, nested tables, huge or non-finite numbers, and bytes that are not TOML or not UTF-8.
3. `--config` settings files: the same, with values outside their ranges.
4. `crs view` on a real run folder whose transcripts.jsonl, metrics.json and config.json are
   damaged, with --conversation, --failures, --why and --explain.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crs.data
import crs.factory
from crs.cli import main
from crs.cli.common import settings_from_args
from crs.data import Dataset
from crs.language import MAX_CHARS, Understander
from crs.language.acts import (
    DontCare,
    Help,
    MentionItem,
    MoreLike,
    RejectItem,
    Restart,
    Understanding,
    Unknown,
)
from crs.language.lexicon import LEXICON
from crs.language.reading import read_message
from crs.policy_config import PolicyConfig, load_policy_config
from crs.settings import SECTIONS, ConfigError, Settings, default_tree, validate
from crs.types import (
    AcceptReply,
    AnswerReply,
    Ask,
    GiveUp,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
)

CASES = 1000
PROPERTY = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message.strip() and "Traceback" not in message


# --- 1. language understanding ---------------------------------------------------------------------


def _lexicon_words() -> list[str]:
    """Every word and phrase of the lexicon: the cues the rules react to."""
    words: set[str] = set(LEXICON.synonyms)
    for field in dataclasses.fields(LEXICON):
        words.update(_flatten_words(getattr(LEXICON, field.name)))
    return sorted(w for w in words if w)


def _flatten_words(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple | frozenset | list):
        if value and all(isinstance(v, str) for v in value) and isinstance(value, tuple):
            yield " ".join(value)  # a phrase
        for part in value:
            yield from _flatten_words(part)


LEXICON_WORDS = _lexicon_words()
ODD_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),
    max_size=30,
) | st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "\ufeff", "\r\n", "\t", "<b>", "'", '"', "-"])
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(0, 20).map(str),
    st.sampled_from(["#1", "#3", "no. 2", "1st", "2nd", "third", "last", "1995", "(1995)", "80s", "'90s"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


def fragments(titles: list[str], attributes: list[str]) -> st.SearchStrategy[str]:
    title = st.sampled_from(titles)
    return st.one_of(
        title,
        title.map(str.lower),
        title.map(lambda t: t.upper()),
        title.map(lambda t: f'"{t}"'),
        title.map(lambda t: t[: max(1, len(t) // 2)]),  # half a title: the fuzzy path
        st.sampled_from(attributes),
        st.sampled_from(attributes).map(str.upper),
        st.sampled_from(LEXICON_WORDS),
        NUMBERS,
        ODD_TEXT,
        st.sampled_from([",", ".", "!", "?", ";", ":", " but ", " and ", " not ", " like ", " no "]),
    )


def sentences(titles: list[str], attributes: list[str]) -> st.SearchStrategy[str]:
    """What people write: a cue, then a title, an attribute or a pointer into the list."""
    cue = st.sampled_from(LEXICON_WORDS) | st.sampled_from(
        ["I love", "not", "no", "I hate", "like", "more like"]
    )
    target = st.one_of(
        st.sampled_from(titles),
        st.sampled_from(titles).map(str.lower),
        st.sampled_from(attributes),
        st.sampled_from(["the first one", "#2", "number 3", "the last one", "2", "that one", "them all"]),
    )
    return st.lists(st.tuples(cue, target).map(" ".join), min_size=1, max_size=3).map(", ".join)


def messages(titles: list[str], attributes: list[str]) -> st.SearchStrategy[object]:
    pieces = st.lists(fragments(titles, attributes), max_size=8)
    joined = st.tuples(pieces, st.sampled_from([" ", "", ", ", "\n", " \x00 "])).map(
        lambda parts: parts[1].join(parts[0])
    )
    said = sentences(titles, attributes)
    # Longer than the reader looks at: a fragment repeated past MAX_CHARS.
    long = st.tuples(fragments(titles, attributes), st.integers(1, 3 * MAX_CHARS)).map(
        lambda pair: (pair[0] + " ") * (pair[1] // max(1, len(pair[0]) + 1) + 1)
    )
    # What a caller outside the chat might hand over: not text at all.
    other = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=20), st.lists(st.integers()))
    return st.one_of(said, joined, said, said, joined, said, long, other)


def contexts(n_items: int, n_attributes: int) -> st.SearchStrategy[SystemAction | None]:
    return st.one_of(
        st.none(),
        st.builds(Ask, st.integers(0, n_attributes - 1)),
        st.builds(
            Recommend,
            st.lists(st.integers(0, n_items - 1), min_size=1, max_size=10, unique=True).map(tuple),
        ),
        st.just(GiveUp()),
    )


class Reader:
    """An understander with the word pools its messages are drawn from."""

    def __init__(self, dataset: Dataset) -> None:
        catalog = dataset.catalog
        self.understander = Understander(catalog, popularity=dataset.popularity)
        self.n_items, self.n_attributes = catalog.n_items, catalog.n_attributes
        self.titles = sorted({item.title for item in catalog.items})
        self.attributes = sorted({attribute.name for attribute in catalog.attributes})
        # Built once: a strategy over ten thousand titles is costly to build at every case.
        self.messages = messages(self.titles, self.attributes)
        self.contexts = contexts(self.n_items, self.n_attributes)


@pytest.fixture(scope="module")
def readers(movielens_dataset: Dataset, lastfm_star: Dataset) -> dict[str, Reader]:
    return {"movielens": Reader(movielens_dataset), "lastfm_star": Reader(lastfm_star)}


READERS = ("movielens", "lastfm_star")


def check_understanding(reader: Reader, text: object, context: SystemAction | None) -> None:
    # `understand` turns any exception into a generic "sorry": the rules themselves must not need it.
    result = reader.understander._understand(text, context)
    assert reader.understander.understand(text, context) == result
    assert isinstance(result, Understanding)
    assert result.acts and 0.0 <= result.confidence <= 1.0
    as_text = text if isinstance(text, str) else ("" if text is None else str(text))
    assert result.truncated == (len(as_text) > MAX_CHARS)
    pending = context.attribute if isinstance(context, Ask) else None
    shown = context.items if isinstance(context, Recommend) else ()
    items, attributes = range(reader.n_items), range(reader.n_attributes)
    for act in result.acts:
        if isinstance(act, AnswerReply | DontCare):
            assert pending is not None, (text, result)
        elif isinstance(act, AcceptReply | RejectItem | MoreLike):
            assert act.item in shown, (text, result)
        elif isinstance(act, MentionItem):
            assert act.item in items
        elif isinstance(act, InformReply):
            assert set(act.attributes) <= set(attributes) and set(act.unwanted) <= set(attributes)
            assert not set(act.attributes) & set(act.unwanted)
            assert pending not in act.attributes and pending not in act.unwanted
            assert act.attributes or act.unwanted
        else:
            assert isinstance(act, RejectReply | QuitReply | Restart | Help | Unknown), act
    if Unknown() in result.acts:
        assert result.acts == (Unknown(),) and result.clarify
    assert all(item in items for item in result.choices)
    assert not result.choices or result.clarify
    reading = read_message(result, context)
    if reading.kind == "reply":
        assert reading.reply is not None
    elif reading.kind == "clarify":
        assert reading.clarify == result.clarify
    elif reading.kind == "more_like":
        assert reading.item in shown
    else:
        assert reading.kind in ("restart", "help", "not_understood") and reading.reply is None


@pytest.mark.parametrize("name", READERS)
@PROPERTY
@given(data=st.data())
def test_any_message_is_read_into_well_formed_acts(readers: dict[str, Reader], name: str, data: Any) -> None:
    reader = readers[name]
    text = data.draw(reader.messages, label="message")
    context = data.draw(reader.contexts, label="context")
    check_understanding(reader, text, context)


# --- TOML documents, for 2. and 3. -----------------------------------------------------------------

HUGE = st.sampled_from([2**63, -(2**63) - 1, 10**40, -(10**40), 2**1100])
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-5, 20),
    st.integers(),
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.5, -0.1, 1e308, 1e-320]),
    st.text(max_size=12),
    st.sampled_from(["", "none", "default", ".", "/", "..", "belief", "random", "genre", "\x00"]),
    st.dates(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but for surrogate pairs, which TOML refuses: keep those characters.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return value.isoformat()  # a date


def toml_document(data: dict[str, Any]) -> str:
    """Scalars first, then one [table] per top-level table; deeper tables inline."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_string(key)}]")
            lines.extend(f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def broken(text: str) -> st.SearchStrategy[bytes]:
    """A document's bytes damaged: cut, a stray byte, or not UTF-8 at all."""
    raw = text.encode("utf-8", "surrogatepass")
    return st.one_of(
        st.integers(0, len(raw)).map(lambda n: raw[:n]),
        st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=3)).map(
            lambda pair: raw[: pair[0]] + pair[1] + raw[pair[0] :]
        ),
        st.just(raw.decode("utf-8", "surrogatepass").encode("utf-16")),
        st.just(b"\xff\xfe" + raw),
        st.binary(max_size=40),
    )


def documents(tables: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    text = tables.map(toml_document)
    return st.one_of(
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        text.flatmap(broken),
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def expect_config_error(action: Callable[[], Any], where: str) -> Any:
    """The value of `action`, or None after the ConfigError (the CLI's `error:` line) it raised,
    which must be one line naming `where`."""
    try:
        return action()
    except ConfigError as error:
        message = str(error)
        assert one_line(message), message
        assert where in message, message
        return None


# --- 2. policy configuration files -----------------------------------------------------------------

QUESTION_VALUES = st.one_of(
    VALUES,
    st.lists(st.sampled_from(["genre", "decade", "tag", "rock", "Comedy", "nope"]), max_size=3),
    st.dictionaries(st.sampled_from(["genre", "decade", "tag", "rock"]), st.integers() | st.floats()),
    st.dictionaries(
        st.sampled_from(["genre", "decade", "tag", "made_up"]),
        st.dictionaries(
            st.sampled_from(["label", "style", "templates", "question", "members", "lowercase", "x"]),
            VALUES
            | st.sampled_from(["choice", "yesno"])
            | st.lists(st.sampled_from(["Do you like {name}?", "{0}", "{name", "{other}"]), max_size=2),
        ),
        max_size=2,
    ),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four: deep checks run only on documents that pass the shallow ones."""
    # (not `one_of(good, good, good, bad)`: one_of draws each distinct strategy equally often)
    return st.integers(0, 3).flatmap(lambda n: bad if n == 0 else good)


def near(value: Any) -> st.SearchStrategy[Any]:
    """A value of the kind of `value`, often at an edge, sometimes of another kind."""
    if isinstance(value, bool):
        same: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(value, int):
        same = st.integers(-3, 30) | HUGE
    elif isinstance(value, float):
        same = st.floats(allow_nan=True, allow_infinity=True) | HUGE | st.integers(-3, 30)
    elif isinstance(value, list):
        same = st.lists(st.floats(allow_nan=True) | HUGE | st.integers(-2, 2), max_size=4)
    else:
        same = st.text(max_size=8)
    return mostly(same, VALUES)


def policy_tables() -> st.SearchStrategy[dict[str, Any]]:
    from crs.questions import QUESTION_KEYS
    from crs.registry import POLICIES
    from crs.settings import policy_parameters

    names = list(POLICIES.names())
    known = {name: policy_parameters(name) for name in ("belief", "max_entropy", "random", "fact_tree")}

    def params_of(policy: str) -> st.SearchStrategy[Any]:
        own = known.get(policy, {"list_size": 10})
        value = st.one_of([st.tuples(st.just(name), near(default)) for name, default in sorted(own.items())])
        other = st.tuples(st.sampled_from(["questions", "nonsense", "list_sizes"]), VALUES)
        return st.lists(mostly(value, other), max_size=4).map(dict)

    def table(policy: Any) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {"policy": st.just(policy)},
            optional={
                "label": mostly(st.text(max_size=10), VALUES),
                "description": mostly(st.text(max_size=10), VALUES),
                "params": mostly(params_of(policy), VALUES) if isinstance(policy, str) else VALUES,
                "questions": mostly(questions, VALUES),
            },
        )

    question_key = mostly(st.sampled_from(list(QUESTION_KEYS)), st.sampled_from(["unknown", "ask_group"]))
    questions = st.lists(st.tuples(question_key, QUESTION_VALUES), max_size=4).map(dict)
    named = st.one_of([table(name) for name in names])
    misnamed = (st.sampled_from(["", "nonsense", "package.module:Class"]) | VALUES).flatmap(table)
    odd = st.fixed_dictionaries({}, optional={"extra": VALUES, "label": VALUES, "params": VALUES})
    return mostly(named, misnamed | odd)


class Datasets(tuple[Dataset, ...]):
    def __repr__(self) -> str:  # a failing case is printed with its arguments: not whole catalogs
        return f"Datasets({', '.join(d.name for d in self)})"


@pytest.fixture(scope="module")
def both(lastfm_star: Dataset, movielens_dataset: Dataset) -> Datasets:
    return Datasets((lastfm_star, movielens_dataset))


@PROPERTY
@given(document=documents(policy_tables()), text_too=st.booleans())
def test_any_policy_config_file_is_a_config_or_one_error(
    scratch: Path, both: Datasets, document: bytes, text_too: bool
) -> None:
    path = scratch / "policy.toml"
    path.write_bytes(document)
    config = expect_config_error(lambda: load_policy_config(path), str(path))
    if text_too:  # the lab's editor hands text, not a file
        try:
            text = document.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            again = expect_config_error(
                lambda: PolicyConfig.from_toml(text, "<lab>", "policy", scratch), "<lab>"
            )
            assert (again is None) == (config is None)
    if config is None:
        return
    assert isinstance(config, PolicyConfig) and config.label and isinstance(config.policy, str)
    assert PolicyConfig.from_toml(config.to_toml(), str(path), base=scratch) == config
    for dataset in both:
        expect_config_error(lambda dataset=dataset: config.check(dataset), str(path))


# --- 3. --config settings files --------------------------------------------------------------------


def settings_tables() -> st.SearchStrategy[dict[str, Any]]:
    """Sections of crs/defaults.toml with values near their defaults (often outside their range),
    sometimes with unknown keys, tables where values belong, and the reverse."""

    def table(defaults: dict[str, Any]) -> st.SearchStrategy[Any]:
        scalars = sorted(k for k, v in defaults.items() if not isinstance(v, dict))
        if not scalars:  # [simulator] holds only [simulator.llm]
            return st.fixed_dictionaries({}, optional={k: table(v) for k, v in defaults.items()})
        known = st.one_of(
            [st.tuples(st.just(key), mostly(near(defaults[key]), st.sampled_from(EDGES))) for key in scalars]
        )
        unknown = st.tuples(st.sampled_from(["unknown_key", "", "policy"]), VALUES)
        return mostly(st.lists(mostly(known, unknown), max_size=4).map(dict), VALUES)

    tree = default_tree()
    sections: dict[str, Any] = {name: table(tree[name]) for name in SECTIONS}
    for plugin_section in ("policy", "scorer"):
        plugins = {**tree[plugin_section], "nonsense": {"x": 1}}
        sections[plugin_section] = st.lists(
            st.one_of([st.tuples(st.just(name), table(defaults)) for name, defaults in plugins.items()]),
            max_size=2,
        ).map(dict)
    valid = st.fixed_dictionaries({}, optional=sections)
    odd = st.fixed_dictionaries({}, optional={**sections, "unknown_section": VALUES})
    return mostly(valid, odd)


EDGES = [-1, 0, 1, 2, 1.0000001, -0.0, 2.5, 65536, -(10**20), 10**20, True, "", " ", "belief", "rule"]


def parsed(document: bytes) -> dict[str, Any] | None:
    import tomllib

    try:
        return tomllib.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


@PROPERTY
@given(document=documents(settings_tables()))
def test_any_settings_file_gives_checked_settings_or_one_error_naming_it(
    scratch: Path, document: bytes
) -> None:
    path = scratch / "settings.toml"
    path.write_bytes(document)
    args = argparse.Namespace(config=path, param=[], policy_config=None, limit=None)
    loaded = expect_config_error(lambda: settings_from_args(args, {"evaluate.limit": "limit"}), str(path))
    if loaded is None:
        return
    assert isinstance(loaded, Settings)
    for name in SECTIONS:  # every value is inside its range
        validate(getattr(loaded, name), name)
    data = parsed(document)
    assert data is not None  # read fine, so it was TOML
    for section, table in data.items():  # and is what the file says
        if section in SECTIONS and section != "simulator":
            for key, value in table.items():
                assert getattr(getattr(loaded, section), key) == value


# --- 4. `crs view` on a damaged run folder ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A small real run of a policy that can say why it acted (belief; without its learned prior,
    which takes seconds to fit), made once."""
    run = tmp_path_factory.mktemp("view") / "run"
    argv = ["evaluate", "--dataset", "lastfm_star", "--policy", "belief", "--scorer", "popularity"]
    argv += ["--param", "use_prior=false"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--limit", "6", "--out", str(run), "--data-dir", str(data_dir), "--quiet"]) == 0
    return run


@pytest.fixture(scope="module")
def loaded_once() -> Iterator[None]:
    """--why and --explain load the dataset and the policy at every call; the same ones are kept
    for the whole module so that a thousand cases take seconds, not minutes."""
    patch = pytest.MonkeyPatch()
    patch.setattr(crs.data, "load_dataset", functools.cache(crs.data.load_dataset))
    policies: dict[str, Any] = {}
    real = crs.factory.policy_for_run

    def policy_for_run(spec: Any, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        key = repr((spec, dataset.name))
        if key not in policies:
            policies[key] = real(spec, dataset, *args, **kwargs)
        return policies[key]

    patch.setattr(crs.factory, "policy_for_run", policy_for_run)
    yield
    patch.undo()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["yes", "no", "ask", "recommend", "user", "system", "success", "max_turns", "0", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def mutate(value: Any, draw: Callable[..., Any], depth: int = 0) -> Any:
    """`value` with one part replaced, removed or added, chosen by `draw`."""
    container = isinstance(value, dict | list) and (value or isinstance(value, dict))
    if not container or depth > 5 or draw(st.integers(0, 5)) == 0:
        return draw(JSON_VALUES)
    if isinstance(value, dict):
        keys = sorted(value, key=str)
        choice = draw(st.sampled_from([*keys, None]))
        copy = dict(value)
        if choice is None:
            copy[draw(st.text(max_size=6) | st.sampled_from(["extra", "turns", "turn"]))] = draw(JSON_VALUES)
        elif draw(st.booleans()):
            del copy[choice]
        else:
            copy[choice] = mutate(value[choice], draw, depth + 1)
        return copy
    index = draw(st.integers(0, len(value) - 1))
    copy_list = list(value)
    if draw(st.integers(0, 4)) == 0:
        del copy_list[index]
    else:
        copy_list[index] = mutate(value[index], draw, depth + 1)
    return copy_list


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def damaged_lines(lines: list[str], draw: Callable[..., Any]) -> bytes:
    """transcripts.jsonl with one line (or the file) damaged."""
    how = draw(
        st.sampled_from(
            ["turn", "turn", "turn", "mutate", "mutate", "line", "cut", "bytes", "deep", "drop", "swap"]
        )
    )
    index = draw(st.integers(0, len(lines) - 1))
    out = [line.encode("utf-8") for line in lines]
    if how == "turn":  # one field of one turn: the metrics still agree, so the turns are shown
        record = json.loads(lines[index])
        turn = draw(st.integers(0, len(record["turns"]) - 1))
        record["turns"][turn] = mutate(record["turns"][turn], draw)
        out[index] = json_text(record).encode("utf-8", "surrogatepass")
    elif how == "mutate":
        out[index] = json_text(mutate(json.loads(lines[index]), draw)).encode("utf-8", "surrogatepass")
    elif how == "line":  # a JSON value that is not an object, or not JSON
        out[index] = draw(
            JSON_VALUES.map(json_text).map(lambda t: t.encode("utf-8", "surrogatepass"))
            | st.binary(max_size=30)
            | st.sampled_from([b"\xff\xfe", b"\xc3", b"{", b"}", b"NaN", b"Infinity", b"-Infinity", b"1e999"])
        )
    elif how == "cut":
        out[index] = out[index][: draw(st.integers(0, len(out[index])))]
    elif how == "bytes":
        at = draw(st.integers(0, len(out[index])))
        out[index] = out[index][:at] + draw(st.binary(min_size=1, max_size=4)) + out[index][at:]
    elif how == "deep":
        depth = draw(st.sampled_from([50, 1000, 100_000]))
        out[index] = (
            b"[" * depth + b"]" * depth if draw(st.booleans()) else b'{"a":' * depth + b"1" + b"}" * depth
        )
    elif how == "drop":
        del out[index]
    else:
        other = draw(st.integers(0, len(lines) - 1))
        out[index], out[other] = out[other], out[index]
    return b"\n".join(out) + b"\n"


VIEW_FLAGS = st.lists(
    st.one_of(
        st.tuples(st.just("--conversation"), mostly(st.integers(0, 5), st.integers(-2, 8)).map(str)),
        st.tuples(st.just("--failures"), st.integers(-1, 7).map(str)),
        st.tuples(st.sampled_from(["--why", "--explain"])),
    ),
    min_size=1,
    max_size=3,
).map(lambda groups: [flag for group in groups for flag in group])


@PROPERTY
@given(data=st.data())
def test_view_of_a_damaged_run_folder_shows_it_or_says_one_error(
    run_folder: Path, loaded_once: None, scratch: Path, data_dir: Path, data: Any
) -> None:
    folder = scratch / "damaged"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(run_folder, folder)
    draw = data.draw
    damaged = draw(
        mostly(
            st.just(["transcripts"]),
            st.lists(st.sampled_from(["transcripts", "metrics", "config"]), max_size=2, unique=True),
        )
    )
    if "transcripts" in damaged or not damaged:
        lines = (run_folder / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
        (folder / "transcripts.jsonl").write_bytes(damaged_lines(lines, draw))
    for name in ("metrics", "config"):
        if name in damaged:
            original = json.loads((run_folder / f"{name}.json").read_text(encoding="utf-8"))
            replaced = draw(
                st.just(json_text(mutate(original, draw)).encode("utf-8", "surrogatepass"))
                | st.binary(max_size=20)
                | st.sampled_from([b"", b"[]", b"null", b'"metrics"', b"\xff", b"[" * 100_000])
            )
            (folder / f"{name}.json").write_bytes(replaced)
    flags = draw(VIEW_FLAGS, label="flags")
    if "config" in damaged:  # --why would train the policy of each new configuration: minutes
        flags = [flag for flag in flags if flag != "--why"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["view", str(folder), *flags, "--data-dir", str(data_dir)])
    if code == 0:  # progress bars may go to stderr, nothing else
        assert "| dataset" in out.getvalue() and "error" not in err.getvalue()
    else:
        assert code == 2, (code, err.getvalue())
        message = err.getvalue()
        assert message.startswith("error: ") and one_line(message), message
