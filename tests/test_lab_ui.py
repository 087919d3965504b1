"""The "Policy lab" tab: its handlers directly, then end to end through gradio_client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crs.chat import ChatBot
from crs.evaluation.metrics import conversation_values
from crs.lab.stats import MIN_INTERVAL_CONVERSATIONS
from ui.lab import (
    LabResult,
    build_lab_tab,
    conversation_choices,
    parse_config,
    preset_configs,
    replay_markdown,
    run_comparison,
    summary_markdown,
)

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
    # Up to turn 1 the openings and the first system turn show, and the outcome is not given away.
    assert "success" not in replay_markdown(result, restricted[0].conversation_id, 1).split("outcome")[1]


INTERVAL = re.compile(r"\[[-+]?\d+\.\d+, [-+]?\d+\.\d+\]")  # "[0.450, 0.750]", "[+0.775, +2.000]"


@pytest.fixture(scope="module")
def enough(movie_bot: ChatBot) -> LabResult:
    """A comparison just large enough for intervals."""
    default = preset_configs(movie_bot.dataset.name)["default"]
    return run_comparison(movie_bot.dataset, [default, RESTRICTED], MIN_INTERVAL_CONVERSATIONS, 0)


def test_tiny_comparisons_show_no_intervals_and_say_why(movie_bot: ChatBot, enough: LabResult) -> None:
    default = preset_configs(movie_bot.dataset.name)["default"]
    for n in (1, 3, MIN_INTERVAL_CONVERSATIONS - 1):
        result = run_comparison(movie_bot.dataset, [default, RESTRICTED], n, 0)
        for page in (summary_markdown(result), (result.folder / "table.md").read_text()):
            assert not INTERVAL.search(page), (n, INTERVAL.search(page))
            assert (
                "[n/a]" in page
                and f"intervals need at least {MIN_INTERVAL_CONVERSATIONS} conversations" in page
            )
    page = summary_markdown(enough)
    assert INTERVAL.search(page) and "need at least" not in page


def replay_table(text: str) -> list[list[str]]:
    """The cells of a replay's Markdown table, header and separator left out."""
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_replay_turns_agree_with_the_outcome_and_the_table(enough: LabResult) -> None:
    # One count of turns wherever a person reads one: the replay's rows, its outcome line, the
    # conversation list and the table's AT (whose per-conversation value is the success's turn).
    comparison = enough.comparison
    labels = dict(conversation_choices(enough, limit=MIN_INTERVAL_CONVERSATIONS))
    successes = 0
    for record in comparison.runs[0].records:
        records = comparison.conversation(record.conversation_id)
        rows = replay_table(replay_markdown(enough, record.conversation_id, None))
        assert rows[0][0] == "opening" and rows[-1][0] == "outcome"
        numbers = [int(row[0]) for row in rows[1:-1]]
        assert numbers == list(range(1, len(numbers) + 1))
        for column, (label, run_record) in enumerate(records.items(), start=1):
            outcome = rows[-1][column]
            if not run_record.success:
                assert "failed" in outcome
                continue
            successes += 1
            accepted = [int(row[0]) for row in rows[1:-1] if "-> accepted" in row[column]]
            (at,) = conversation_values([run_record.outcome], "AT")
            assert outcome == f"**success** at turn {accepted[-1]}" and accepted[-1] == at, (label, outcome)
            choice = next(text for text, value in labels.items() if value == record.conversation_id)
            assert "differs" not in choice or f"{label}: turn {accepted[-1]}" in choice
    assert successes > 0
    opening = replay_table(replay_markdown(enough, 0, 0))
    assert [row[0] for row in opening] == ["opening", "outcome"] and set(opening[-1][1:]) == {"…"}


def test_plots_are_not_covered_by_their_labels(movie_bot: ChatBot) -> None:
    # gradio draws an image's label as a badge over the image's top left corner, where it hid the
    # start of the questions plot's title.
    import gradio as gr

    with gr.Blocks() as page:
        build_lab_tab(movie_bot.dataset)
    images = [block for block in page.blocks.values() if isinstance(block, gr.Image)]
    assert len(images) == 2 and not any(image.show_label for image in images)


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


def test_zero_conversations_is_a_message_not_a_traceback(
    app_url: str, movie_bot: ChatBot, capfd: pytest.CaptureFixture[str]
) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    default = preset_configs(movie_bot.dataset.name)["default"]
    capfd.readouterr()
    for count in (0, -3, 2001):
        message, *_ = client.predict(default, RESTRICTED, count, 0, api_name="/lab_compare")
        assert message.startswith("**error:**") and "between 1 and 2000" in message, message
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out
