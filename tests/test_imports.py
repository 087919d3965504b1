"""The core stays light: importing it and running an evaluation never loads torch, gradio, chromadb or ray."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import crs, crs.cli, crs.env, crs.tracker, crs.data, crs.evaluation.runner, crs.scoring, crs.settings
import crs.evaluation.ray_engine  # Ray itself only when a run asks for it
import policy.max_entropy, policy.scpr_walk, policy.random_question, simulators, knowledge_graph
from crs.data import load_dataset
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
dataset = load_dataset("lastfm")
spec = RunSpec(dataset="lastfm", policy="scpr_walk", scorer="popularity", limit=20)
evaluate(spec, dataset, policy_for_run(spec, dataset))
heavy = sorted(m for m in ("torch", "gradio", "chromadb", "sentence_transformers", "transformers", "ray")
               if m in sys.modules)
print(",".join(heavy))
"""


def test_core_does_not_import_heavy_packages() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
