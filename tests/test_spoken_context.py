"""The whole-chat evaluation builds its chat and language model per run: a later run in the same
process (a benchmark, a test session, the one-command `crs simulate-check`) never talks through
an earlier run's model, even when Python gives its RunContext the earlier one's id()."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

import crs.evaluation.spoken
from crs.data import Dataset
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.llm.base import Generation, GenerationRequest
from crs.settings import LLMSettings


@dataclass
class _Counting:
    """A model that says the same words to everything and counts how often it is asked."""

    name: str = "counting"
    requests: list[GenerationRequest] = field(default_factory=list)

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation("Hmm, whatever you think.", 10, 5, 0.0)


def test_a_later_run_gets_its_own_context(
    movielens_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _Counting()
    built: list[LLMSettings] = []

    def fake_backend(llm: LLMSettings, cache_dir: Path | None) -> _Counting:
        built.append(llm)
        return model

    monkeypatch.setattr(crs.evaluation.spoken, "shared_backend", fake_backend)
    # CPython hands a freed object's address to the next one of its size, but not always: here
    # every object has one id(), so a context found by id() would always be the stale one.
    monkeypatch.setattr(crs.evaluation.spoken, "id", lambda obj: 1, raising=False)
    spec = RunSpec(
        dataset="movielens",
        policy="belief",
        scorer="popularity",
        simulator="llm",
        limit=2,
        llm=LLMSettings(backend="local", cache=False),
    )
    policy = policy_for_run(spec, movielens_dataset)
    with_model = evaluate(spec, movielens_dataset, policy)
    assert len(built) == 1 and model.requests
    assert sum(r.extra["llm_utterances"] for r in with_model.records) > 0

    asked = len(model.requests)
    templates = evaluate(replace(spec, llm=LLMSettings(backend="none")), movielens_dataset, policy)
    # The second run has no model: had it kept the first run's context it would have asked it.
    assert len(model.requests) == asked and len(built) == 1
    for record in templates.records:
        assert record.extra["llm_utterances"] == 0
        assert {t.words for t in record.turns if t.user_text} == {"template"}

    # The same spec again is another run: its context is built again, not found by id().
    evaluate(spec, movielens_dataset, policy)
    assert len(built) == 2
