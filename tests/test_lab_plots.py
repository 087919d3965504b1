"""The policy lab's plots keep every title, name and label inside the image, however long."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crs.lab.plots import plot_metric_sweep, plot_questions_asked, plot_turns_histogram
from crs.lab.stats import Estimate

BORDER = 3  # pixels along each edge that must stay background: text cut by an edge would show there

LONG_TITLE = "questions asked: " + ", ".join(["a_dataset_with_a_long_name / valid: 2000 conversations"] * 3)
LONG_LABEL = "belief, genres only, at most four questions, lists of five"


def questions(path: Path, title: str) -> None:
    by_group = {
        "default": {"genre": 1.9, "decade": 0.4},
        LONG_LABEL: {"genre": 1.8, "a long group name": 0.5},
    }
    names = [
        "Drama",
        "Documentary",
        "female vocalists of the nineteen-eighties",
        *(f"tag {i}" for i in range(12)),
    ]
    by_attribute = {label: {name: 0.4 - 0.02 * i for i, name in enumerate(names)} for label in by_group}
    plot_questions_asked(by_group, by_attribute, path, title)


def histogram(path: Path, title: str) -> None:
    plot_turns_histogram({"default": [1, 4, None, 6], LONG_LABEL: [3, None, 9]}, 15, path, title)


def sweep(path: Path, title: str) -> None:
    estimates = [Estimate(0.5, 0.4, 0.6), Estimate(0.6, 0.5, 0.7), Estimate.undefined(0.7)]
    plot_metric_sweep("gain_weight", [10, 30, 60], estimates, "SR@15", path, title)


@pytest.mark.parametrize("plot", [questions, histogram, sweep], ids=lambda plot: plot.__name__)
@pytest.mark.parametrize("title", ["questions asked: movielens / valid: 20 conversations", LONG_TITLE])
def test_text_stays_inside_the_image(plot: Callable[[Path, str], None], title: str, tmp_path: Path) -> None:
    import matplotlib.image

    path = tmp_path / "plot.png"
    plot(path, title)
    pixels = matplotlib.image.imread(path)[..., :3]
    edges = [pixels[:BORDER], pixels[-BORDER:], pixels[:, :BORDER], pixels[:, -BORDER:]]
    assert all(np.all(edge > 0.99) for edge in edges), "something is cut by the image's edge"
    assert np.any(pixels[: pixels.shape[0] // 8] < 0.5), "no title drawn at the top"
