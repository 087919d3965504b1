"""Same seed, same conversations, whatever the number of worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crs.data import Dataset
from crs.evaluation.runner import RunSpec, evaluate
from crs.protocol import target_pairs
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


# The first three shuffled valid pairs of LastFM* as (user, item): recorded from UNICORN's own
# procedure below, run on the raw file; on LastFM* an item's index is its id.
GOLDEN_FIRST_ROWS = [[229, 4753], [789, 3016], [985, 530]]


def test_targets_follow_the_protocol_shuffle(lastfm_star: Dataset, data_dir: Path) -> None:
    # The reference (UNICORN, RL/env_binary_question.py, __test_tuple_generate__): the raw valid
    # file's [user, item] rows in file order, in a numpy array shuffled in place after
    # set_random_seed(1), i.e. numpy's global seed 1.
    raw = json.loads((data_dir / "lastfm_star" / "review_dict_valid.json").read_text(encoding="utf-8"))
    reference = np.array([[int(user), item] for user, items in raw.items() for item in items])
    np.random.seed(1)
    np.random.shuffle(reference)
    full = target_pairs(lastfm_star, "valid")
    assert full.tolist() == reference.tolist()
    assert full[:3].tolist() == GOLDEN_FIRST_ROWS
    # A limited run is a prefix of the full shuffle: the first 4000 pairs are the evaluation set.
    assert target_pairs(lastfm_star, "valid", 4000).tolist() == full[:4000].tolist()
