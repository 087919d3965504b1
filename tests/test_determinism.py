"""Same seed, same conversations, whatever the number of worker processes."""

from __future__ import annotations

from crs.data import Dataset
from crs.evaluation.runner import RunSpec, evaluate, target_pairs
from crs.scoring import PopularityScorer
from policy.max_entropy import MaxEntropyPolicy
from policy.random_question import RandomQuestionPolicy


def _transcripts(dataset: Dataset, **spec: object) -> list[dict[str, object]]:
    run = RunSpec(dataset=dataset.name, limit=300, **spec)  # type: ignore[arg-type]
    policy_class = RandomQuestionPolicy if run.policy == "random" else MaxEntropyPolicy
    result = evaluate(run, dataset, policy_class(dataset, PopularityScorer(dataset)))
    return [record.to_json(timings=False) for record in result.records]


def test_workers_do_not_change_results(lastfm_star: Dataset) -> None:
    noisy = dict(answer_noise=0.1, dont_know=0.1, policy="random")
    assert _transcripts(lastfm_star, workers=1, **noisy) == _transcripts(lastfm_star, workers=2, **noisy)


def test_seed_reaches_every_random_choice(lastfm_star: Dataset) -> None:
    first = _transcripts(lastfm_star, seed=3, policy="random", answer_noise=0.1)
    assert first == _transcripts(lastfm_star, seed=3, policy="random", answer_noise=0.1)
    assert first != _transcripts(lastfm_star, seed=4, policy="random", answer_noise=0.1)


def test_targets_follow_the_protocol_shuffle(lastfm_star: Dataset) -> None:
    import numpy as np

    pairs = lastfm_star.split("valid").pairs()
    expected = np.array(pairs)
    np.random.seed(1)
    np.random.shuffle(expected)
    assert (target_pairs(lastfm_star, "valid") == expected).all()
    assert len(target_pairs(lastfm_star, "valid", 4000)) == 4000
