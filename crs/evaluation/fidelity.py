"""How close simulated users' words are to real people's: a simulator is checked against real
seekers before its numbers mean anything (SimUSER, UserBench, "How reliable is your simulator?").

The user side of a run (every `user_text` of its transcripts) is compared with real seekers'
messages, ReDial's (`train_data.jsonl`, each `@id` written as its title, as people type it) or
INSPIRED's (`dev.tsv`):

- **Length**: words per message, mean and median, and the distribution (`length_histogram`).
- **Variety**: distinct-1 and distinct-2 (distinct unigrams / bigrams over all of them), the
  share of distinct messages, and the share of the most common message. Messages are compared
  folded (case, punctuation and spacing do not make two replies different).
- **What people do** (`act_mix`), read by the chat's own understanding: answers (yes, no, not
  sure), refusals (of a list or a question) and whether they give a reason, preferences
  volunteered, titles named, questions back, and chit-chat (nothing the chat acts on).
- **Indistinguishability**: a logistic regression on MiniLM embeddings telling a simulated
  message from a real one, cross-validated (stratified folds, balanced classes); its ROC AUC is
  0.5 when the two cannot be told apart, 1.0 when always.

Real messages are sampled with a seeded generator; the same seed gives the same report.

`check_run` compares a run folder with one source (`crs simulate-check`, and `crs evaluate
--simulator llm` after its run) and `save_run_fidelity` writes the comparison into the folder.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crs.evaluation.records import read_transcripts
from crs.evaluation.run_folder import TRANSCRIPTS, write_atomically
from crs.language.text import fold

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.language.understanding import Understander
    from crs.retrieval.encoder import Encoder

Source = Literal["redial", "inspired"]
SOURCES: tuple[Source, ...] = ("redial", "inspired")
LENGTH_BINS = (1, 2, 3, 5, 8, 13, 21, 34)  # words: 1, 2, 3-4, 5-7, 8-12, 13-20, 21-33, 34+
DEFAULT_REAL = 2000  # real messages sampled: enough for a stable AUC, encoded in about half a minute
MIN_MESSAGES = 10  # simulated messages a run needs before its profile means anything
ACTS = ("answer", "refusal", "refusal with a reason", "preference", "title", "question", "chit-chat")
_WORD = re.compile(r"[a-z0-9']+")


def words_of(message: str) -> list[str]:
    return _WORD.findall(fold(message))


def normal_form(message: str) -> str:
    """A message as two replies are compared: folded words, one space apart."""
    return " ".join(words_of(message))


@dataclass(frozen=True)
class TextProfile:
    messages: int
    mean_words: float
    median_words: float
    distinct_1: float
    distinct_2: float
    distinct_messages: float  # share of messages no other message equals
    most_common_share: float
    most_common: str
    length_histogram: tuple[float, ...]  # share of messages per LENGTH_BINS bin

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def text_profile(messages: Sequence[str]) -> TextProfile:
    """Length and variety of `messages` (ValueError when there are none)."""
    if not messages:
        raise ValueError("no messages to profile")
    tokens = [words_of(m) for m in messages]
    lengths = np.array([len(t) for t in tokens], dtype=float)
    unigrams = [w for t in tokens for w in t]
    bigrams = [pair for t in tokens for pair in zip(t, t[1:], strict=False)]
    forms = Counter(normal_form(m) for m in messages)
    most_common, count = forms.most_common(1)[0]
    bins = np.digitize(lengths, LENGTH_BINS[1:])
    histogram = np.bincount(bins, minlength=len(LENGTH_BINS)) / len(messages)
    return TextProfile(
        messages=len(messages),
        mean_words=float(lengths.mean()),
        median_words=float(np.median(lengths)),
        distinct_1=len(set(unigrams)) / max(len(unigrams), 1),
        distinct_2=len(set(bigrams)) / max(len(bigrams), 1),
        distinct_messages=len(forms) / len(messages),
        most_common_share=count / len(messages),
        most_common=most_common,
        length_histogram=tuple(float(x) for x in histogram),
    )


def act_of(understander: Understander, message: str) -> str:
    """The one act of `ACTS` a message mostly is, as the chat's understanding reads it. The
    message's own context is not known for real seekers, so it is read three ways: alone, as the
    answer to a question and as the reply to a list; what it does in any of them counts."""
    from crs.language.acts import DontCare, MentionItem, RejectItem
    from crs.types import AcceptReply, Answer, AnswerReply, Ask, InformReply, Recommend, RejectReply

    alone = understander.understand(message).acts
    to_question = understander.understand(message, Ask(attribute=0)).acts
    to_list = understander.understand(message, Recommend(items=tuple(range(10)))).acts
    if any(isinstance(a, MentionItem) for a in alone):
        return "title"
    refusal = any(isinstance(a, AnswerReply) and a.answer is Answer.NO for a in to_question) or any(
        isinstance(a, RejectReply | RejectItem) for a in to_list
    )
    informs = [a for a in alone if isinstance(a, InformReply) and (a.attributes or a.unwanted)]
    if refusal:
        # "No, I'm not into sad movies" gives a reason; "No." and "none of these" do not.
        return "refusal with a reason" if informs or len(words_of(message)) >= 6 else "refusal"
    if informs:
        return "preference"
    if any(isinstance(a, AnswerReply | DontCare) for a in to_question) or any(
        isinstance(a, AcceptReply) for a in to_list
    ):
        return "answer"
    if message.strip().endswith("?"):
        return "question"
    return "chit-chat"


def act_mix(understander: Understander, messages: Iterable[str]) -> dict[str, float]:
    """Share of messages per act of `ACTS`."""
    counts = Counter(act_of(understander, m) for m in messages)
    total = max(sum(counts.values()), 1)
    return {act: counts.get(act, 0) / total for act in ACTS}


def classifier_auc(
    simulated: Sequence[str], real: Sequence[str], encoder: Encoder, seed: int = 0, folds: int = 5
) -> float:
    """Cross-validated ROC AUC of a logistic regression telling `simulated` from `real` messages
    by their MiniLM embeddings, on balanced classes (the larger side sampled down, seeded)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    n = min(len(simulated), len(real))
    if n < folds:
        raise ValueError(f"need at least {folds} messages on each side, got {n}")
    rng = np.random.default_rng(seed)
    sim = [simulated[i] for i in rng.choice(len(simulated), n, replace=False)]
    rea = [real[i] for i in rng.choice(len(real), n, replace=False)]
    x = np.asarray(encoder.encode([*sim, *rea]), dtype=np.float64)
    y = np.array([1] * n + [0] * n)
    scores = np.zeros(2 * n)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = LogisticRegression(max_iter=2000, C=1.0)
        model.fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def user_messages(run: Path) -> list[str]:
    """Every message the simulated user wrote in a run folder's transcripts (LLM-user runs hold
    them; a rule-user run holds none)."""
    path = run / "transcripts.jsonl" if run.is_dir() else run
    return [t.user_text for record in read_transcripts(path) for t in record.turns if t.user_text]


def real_messages(data_dir: Path, source: Source, limit: int | None = None, seed: int = 0) -> list[str]:
    """Real seekers' messages (`limit` of them, sampled with `seed`, or all): ReDial's with every
    movie written as its title without the year, from the dialogues of the comparison half only
    (the LLM user may draw its words from the other: `crs.data.redial.seeker_half`), or
    INSPIRED's, which no simulated user ever reads."""
    messages: list[str]
    if source == "redial":
        from crs.data.redial import load_dialogues, seeker_half
        from crs.language.tagged import as_typed

        messages = [
            as_typed(m.text, d.mentions)
            for d in load_dialogues(data_dir, "train")
            if seeker_half(d.conversation_id) == "comparison"
            for m in d.messages
            if m.seeker and m.text.strip()
        ]
    elif source == "inspired":
        from crs.data.inspired import load_seeker_utterances

        messages = [u.text for u in load_seeker_utterances(data_dir) if u.text.strip()]
    else:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if limit is not None and limit < len(messages):
        rng = np.random.default_rng(seed)
        messages = [messages[i] for i in sorted(rng.choice(len(messages), limit, replace=False))]
    return messages


@dataclass(frozen=True)
class FidelityReport:
    """One side's profile and act mix, and (for a simulated side) how well a classifier tells it
    from the real messages it was compared with."""

    label: str
    profile: TextProfile
    acts: dict[str, float]
    auc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "profile": self.profile.as_dict(),
            "acts": {k: round(v, 4) for k, v in self.acts.items()},
            "auc": None if self.auc is None else round(self.auc, 4),
        }


def fidelity(
    label: str,
    messages: Sequence[str],
    understander: Understander,
    real: Sequence[str] | None = None,
    encoder: Encoder | None = None,
    seed: int = 0,
) -> FidelityReport:
    """The report of `messages`; with `real` and an `encoder`, its classifier AUC against them."""
    auc = None
    if real is not None and encoder is not None:
        auc = classifier_auc(messages, real, encoder, seed=seed)
    return FidelityReport(label, text_profile(messages), act_mix(understander, messages), auc)


class TooFewMessagesError(ValueError):
    """A run whose users said too little to compare (a rule-user run says nothing at all)."""

    def __init__(self, run: Path, messages: int) -> None:
        super().__init__(f"{run} holds {messages} user messages (at least {MIN_MESSAGES} are needed)")
        self.messages = messages


@dataclass(frozen=True)
class RunFidelity:
    """A run's simulated users against a sample of one source's real seekers."""

    against: Source
    seed: int
    simulated: FidelityReport
    real: FidelityReport

    @property
    def reports(self) -> tuple[FidelityReport, FidelityReport]:
        return self.simulated, self.real

    def as_dict(self) -> dict[str, Any]:
        """What `fidelity-SOURCE.json` holds."""
        return {"against": self.against, "seed": self.seed, "reports": [r.as_dict() for r in self.reports]}

    def summary(self) -> dict[str, Any]:
        """The figures a run's metrics carry next to its success rates."""
        profile = self.simulated.profile
        return {
            "against": self.against,
            "seed": self.seed,
            "messages": profile.messages,
            "real_messages": self.real.profile.messages,
            "mean_words": round(profile.mean_words, 4),
            "distinct_messages": round(profile.distinct_messages, 4),
            "most_common_share": round(profile.most_common_share, 4),
            "most_common": profile.most_common,
            "acts": {k: round(v, 4) for k, v in self.simulated.acts.items()},
            "auc": None if self.simulated.auc is None else round(self.simulated.auc, 4),
        }

    def tables(self) -> str:
        """Length, variety and the classifier's AUC, then the act mix: simulated above real."""
        from crs.evaluation.report import markdown_table

        headers = ["", "messages", "words (mean)", "distinct-1", "distinct-2", "distinct replies"]
        headers += ["most common", "classifier AUC"]
        rows = [
            [
                r.label,
                str(r.profile.messages),
                f"{r.profile.mean_words:.1f}",
                f"{r.profile.distinct_1:.3f}",
                f"{r.profile.distinct_2:.3f}",
                f"{r.profile.distinct_messages:.3f}",
                f"{r.profile.most_common_share:.3f} ({r.profile.most_common[:30]!r})",
                "" if r.auc is None else f"{r.auc:.3f}",
            ]
            for r in self.reports
        ]
        acts = [[r.label, *(f"{share:.3f}" for share in r.acts.values())] for r in self.reports]
        return markdown_table(headers, rows) + "\n\n" + markdown_table(["acts", *ACTS], acts)


def check_run(
    run: Path,
    against: Source,
    real: Sequence[str],
    *,
    seed: int = 0,
    dataset: Dataset | None = None,
    data_dir: Path | str | None = None,
    encoder: Encoder | None = None,
) -> RunFidelity:
    """The user messages of run folder `run` against `real` messages of `against` (sampled with
    `real_messages`), read by the run's own dataset (`dataset`, or loaded from `data_dir`).
    ValueError when `run` is not a readable run folder; TooFewMessagesError when its users said
    fewer than MIN_MESSAGES messages. `encoder`: MiniLM unless given."""
    from crs.language.understanding import Understander

    transcripts = run / TRANSCRIPTS
    if not transcripts.is_file():
        raise ValueError(f"{run} is not a run folder (expected {transcripts.name})")
    try:
        records = list(read_transcripts(transcripts))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{transcripts} cannot be read: {error}") from None
    simulated = [t.user_text for record in records for t in record.turns if t.user_text]
    if len(simulated) < MIN_MESSAGES:
        raise TooFewMessagesError(run, len(simulated))
    if dataset is None:
        from crs.data import load_dataset

        dataset = load_dataset(records[0].dataset, data_dir)
    if encoder is None:
        from crs.retrieval.encoder import MiniLmEncoder

        encoder = MiniLmEncoder()
    understander = Understander(dataset.catalog, popularity=dataset.popularity)
    label = f"simulated ({records[0].simulator})"
    return RunFidelity(
        against,
        seed,
        fidelity(label, simulated, understander, real, encoder, seed=seed),
        fidelity(f"real ({against} seekers)", real, understander),
    )


def save_run_fidelity(check: RunFidelity, run: Path) -> tuple[Path, Path]:
    """`fidelity-SOURCE.json` and `fidelity-SOURCE.png` written into run folder `run`."""
    data = run / f"fidelity-{check.against}.json"
    write_atomically(data, json.dumps(check.as_dict(), indent=2) + "\n")
    plot = run / f"fidelity-{check.against}.png"
    plot_fidelity(check.reports, plot)
    return data, plot


def plot_fidelity(reports: Sequence[FidelityReport], path: Path) -> None:
    """Message lengths and acts, side by side: simulated against real."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    bins = [
        f"{a}-{b - 1}" if b - 1 > a else str(a) for a, b in zip(LENGTH_BINS, LENGTH_BINS[1:], strict=False)
    ]
    bins.append(f"{LENGTH_BINS[-1]}+")
    figure, (lengths, acts) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    width = 0.8 / len(reports)
    for k, report in enumerate(reports):
        x = np.arange(len(bins)) + k * width
        lengths.bar(x, report.profile.length_histogram, width, label=report.label)
        names = list(report.acts)
        acts.bar(np.arange(len(names)) + k * width, list(report.acts.values()), width, label=report.label)
    lengths.set_xticks(np.arange(len(bins)) + width * (len(reports) - 1) / 2, bins)
    lengths.set_xlabel("words per message")
    lengths.set_ylabel("share of messages")
    lengths.legend()
    names = list(reports[0].acts)
    acts.set_xticks(np.arange(len(names)) + width * (len(reports) - 1) / 2, names, rotation=30, ha="right")
    acts.set_ylabel("share of messages")
    acts.set_title("what the messages do (read by the chat)")
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    os.replace(temporary, path)  # a reader never sees half a plot


__all__ = [
    "ACTS",
    "DEFAULT_REAL",
    "LENGTH_BINS",
    "MIN_MESSAGES",
    "SOURCES",
    "FidelityReport",
    "RunFidelity",
    "TextProfile",
    "TooFewMessagesError",
    "act_mix",
    "act_of",
    "check_run",
    "classifier_auc",
    "fidelity",
    "normal_form",
    "plot_fidelity",
    "real_messages",
    "save_run_fidelity",
    "text_profile",
    "user_messages",
    "words_of",
]
