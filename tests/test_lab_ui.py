"""The "Policy lab" tab: its handlers directly, then end to end through gradio_client."""

from __future__ import annotations

from pathlib import Path

import pytest

from crs.chat import ChatBot
from ui.lab import parse_config, preset_configs, replay_markdown, run_comparison

RESTRICTED = """
label = "genres only, 4 questions"
policy = "belief"

[questions]
ask_groups = ["genre"]
max_questions = 4
"""


def test_presets_parse_and_start_with_the_default(movie_bot: ChatBot) -> None:
    presets = preset_configs(movie_bot.dataset.name, Path(__file__).parents[1] / "configs")
    assert next(iter(presets)) == "default"
    assert len(presets) >= 2  # the repository's ready-made files
    for name, text in presets.items():
        assert parse_config(text, name).policy in {"belief", "max_entropy", "fact_tree", "scpr_walk"}


def test_comparison_honours_the_restricted_configuration(movie_bot: ChatBot) -> None:
    default = preset_configs(movie_bot.dataset.name)["default"]
    result = run_comparison(movie_bot.dataset, [default, RESTRICTED], 25, 0)
    comparison = result.comparison
    assert comparison.labels == ("default", "genres only, 4 questions")
    catalog = movie_bot.catalog
    restricted = comparison.run("genres only, 4 questions").records
    for record in restricted:
        asked = [t for t in record.turns if t.act == "ask"]
        assert len(asked) <= 4
        for turn in asked:
            assert catalog.attributes[catalog.attribute_index(turn.attribute)].group == "genre"
    assert (result.folder / "success_by_turn.png").stat().st_size > 1000
    replay = replay_markdown(result, restricted[0].conversation_id, 15)
    assert "considered:" in replay and "outcome" in replay
    # Up to turn 1 only the users' openings show, and the outcome is not given away.
    assert "success" not in replay_markdown(result, restricted[0].conversation_id, 1).split("outcome")[1]


@pytest.mark.parametrize(
    ("texts", "count", "message"),
    [
        (["policy = 'belief'\n[params]\nlist_siz = 5\n"], 10, "list_siz"),
        (["policy = 'nonsense'"], 10, "unknown policy"),
        (["policy = 'belief'\n[questions]\nask_groups = ['decadez']\n"], 10, "decadez"),
        (["this is not toml"], 10, "not valid TOML"),
        (["policy = 'belief'"], 0, "between 1 and"),
        (["", ""], 10, "at least one"),
    ],
)
def test_bad_input_is_a_clear_error(movie_bot: ChatBot, texts: list[str], count: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_comparison(movie_bot.dataset, texts, count, 0)


def test_lab_tab_through_gradio_client(app_url: str, movie_bot: ChatBot) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    default = preset_configs(movie_bot.dataset.name)["default"]
    summary, success_plot, _, report, _, replay = client.predict(
        default, RESTRICTED, 20, 0, api_name="/lab_compare"
    )
    assert "genres only, 4 questions" in summary and "McNemar" in summary
    assert Path(success_plot).stat().st_size > 1000 and Path(report).read_text().startswith("# Comparison")
    assert "considered:" in replay
    again = client.predict(3, 15, api_name="/lab_replay")
    assert "Conversation 3" in again
    error, *_ = client.predict("policy = 'belief'\nlist_size = 3", RESTRICTED, 20, 0, api_name="/lab_compare")
    assert error.startswith("**error:**") and "list_size" in error
