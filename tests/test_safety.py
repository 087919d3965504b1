"""What a web app and a research tool must never do: load untrusted bytes as code, or serve the
chat beyond this machine without a login. The tree is read with `ast`, so a mention in a comment
or a string does not count and a renamed import still does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from crs.cli import main

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("crs", "policy", "knowledge_graph", "simulators", "ui", "benchmarks", "scripts", "tests")
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}


def findings(tree: ast.AST, where: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            keywords = {k.arg: k.value for k in node.keywords}
            if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
                found.append(f"{where}: {func.id}()")
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if owner == "torch" and func.attr == "load":
                    safe = keywords.get("weights_only")
                    if not (isinstance(safe, ast.Constant) and safe.value is True):
                        found.append(f"{where}: torch.load without weights_only=True")
                if owner == "yaml" and func.attr in ("load", "unsafe_load", "full_load"):
                    found.append(f"{where}: yaml.{func.attr} (use yaml.safe_load)")
                if func.attr == "load" and owner in ("np", "numpy"):
                    allowed = keywords.get("allow_pickle")
                    if isinstance(allowed, ast.Constant) and allowed.value is True:
                        found.append(f"{where}: np.load(allow_pickle=True)")
    return found


def test_no_code_is_loaded_from_data() -> None:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += findings(ast.parse(path.read_text(encoding="utf-8")), str(path.relative_to(ROOT)))
    assert found == [], "\n".join(found)


def test_the_scan_finds_what_it_looks_for() -> None:
    bad = "import pickle\nimport torch, yaml\nx = eval('1')\ntorch.load('m.pt')\nyaml.load(s)\n"
    bad += "import numpy as np\nnp.load('a.npz', allow_pickle=True)\ntorch.load('m.pt', weights_only=True)\n"
    assert len(findings(ast.parse(bad), "x.py")) == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--host", "0.0.0.0"], "refusing to serve the chat on 0.0.0.0 without a login"),
        (["--host", "0.0.0.0", "--auth", "ann"], "--auth takes USER:PASSWORD"),
        (["--auth", ":secret"], "--auth takes USER:PASSWORD"),
    ],
)
def test_the_chat_is_not_served_beyond_this_machine_without_a_login(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", *argv]) == 2  # refused before anything is loaded
    assert message in capsys.readouterr().err


def test_a_chat_with_a_login_refuses_visitors_without_it(movie_bot: object) -> None:
    import urllib.error
    import urllib.request

    from gradio_client import Client

    from ui.app import launch

    demo = launch(movie_bot, "127.0.0.1", block=False, auth=("ann", "s3cret"))  # type: ignore[arg-type]
    try:
        url = str(demo.local_url)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "config", timeout=30)
        assert refused.value.code == 401
        client = Client(url, auth=("ann", "s3cret"), verbose=False)
        assert client.predict(api_name="/start")  # logged in, the chat answers
    finally:
        demo.close()
