"""What learned policies share: tuning pairs that never touch the evaluation pairs, and a cache
that retrains rather than use a file it cannot trust."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from crs.data import Dataset
from crs.protocol import EVALUATION_PAIRS, target_pairs, tuning_pairs
from crs.types import Interactions
from policy.learning import TrainingContext, load_or_train


def test_tuning_pairs_exclude_the_evaluation_pairs(lastfm_star: Dataset) -> None:
    evaluation = {tuple(map(int, row)) for row in target_pairs(lastfm_star, "valid", EVALUATION_PAIRS)}
    tuning = [tuple(map(int, row)) for row in tuning_pairs(lastfm_star)]
    # Pairs are (user, item); a user may like the same item once, so sets compare exactly.
    assert len(tuning) == len(target_pairs(lastfm_star, "valid")) - EVALUATION_PAIRS
    assert not evaluation & set(tuning)


def test_small_datasets_tune_on_the_second_half(tiny: Dataset) -> None:
    # Six valid pairs (far below EVALUATION_PAIRS): the tuning pairs are the second half of the
    # shuffled list, rows 3..5, and none of the first three (the evaluation pairs) is among them.
    valid = Interactions("valid", {0: (1, 3, 4), 1: (0, 1, 3)})
    six = dataclasses.replace(tiny, splits={**tiny.splits, "valid": valid})
    pairs, tuning = target_pairs(six, "valid"), tuning_pairs(six)
    assert len(pairs) == 6
    assert tuning.tolist() == pairs[3:].tolist()
    assert not {tuple(row) for row in tuning.tolist()} & {tuple(row) for row in pairs[:3].tolist()}


def test_cached_arrays_are_reused_and_a_corrupt_file_is_retrained(tiny: Dataset, tmp_path: Path) -> None:
    calls: list[int] = []

    def train() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"weights": np.arange(3.0)}

    context = TrainingContext(tmp_path)
    first = load_or_train(context, tiny, "demo", {"x": 1}, train)
    second = load_or_train(context, tiny, "demo", {"x": 1}, train)
    assert (first.loaded, second.loaded, len(calls)) == (False, True, 1)
    assert np.array_equal(second.arrays["weights"], np.arange(3.0))

    other = load_or_train(context, tiny, "demo", {"x": 2}, train)  # other settings: another file
    assert not other.loaded and other.path != first.path

    first.path.write_bytes(b"PK\x03\x04 truncated")
    again = load_or_train(context, tiny, "demo", {"x": 1}, train)
    assert not again.loaded and len(calls) == 3
    assert load_or_train(context, tiny, "demo", {"x": 1}, train).loaded
