"""The standard ReDial recommendation protocol (KBRD, KGSF, UniCRS, iEvaLM), with the "new items"
variant of He et al. (CIKM 2023).

Samples. For every message written by the recommender, each distinct `@id` in it that is a
catalog movie, in order of first appearance, is one sample. Its context is every earlier message
of the dialogue, both speakers, with each `@id` written as the name the dialogue's
`movieMentions` gives (the catalog's name where the dialogue gives none). A sample is a
**repeat** when its movie was mentioned earlier in the dialogue.

Settings. **all**: the system ranks every catalog movie and movies already mentioned stay in the
ranking (the published protocol). **new**: only samples that are not repeats, and the movies
already mentioned are removed from the ranking (a recommender that repeats the movies just said
gains nothing). Recall@k is the share of samples whose movie is in the top k; MRR the mean of
1/rank.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crs.data.redial import MENTION, Dialogue
from crs.types import Catalog

CUTOFFS = (1, 10, 50)


@dataclass(frozen=True, slots=True)
class ContextMessage:
    text: str  # with every @id written as the movie's name
    seeker: bool
    mentioned: tuple[int, ...]  # catalog items the message mentions (ground truth, for analysis)


@dataclass(frozen=True, slots=True)
class Sample:
    conversation_id: str
    message_id: int
    target: int  # catalog item index
    repeat: bool
    context: tuple[ContextMessage, ...]

    @property
    def mentioned_before(self) -> frozenset[int]:
        return frozenset(item for message in self.context for item in message.mentioned)


def render(text: str, mentions: Mapping[str, str], catalog: Catalog, index_of: Mapping[int, int]) -> str:
    """A message with each `@id` written as the dialogue's name for it."""

    def name(match: re.Match[str]) -> str:
        raw = match.group(1)
        given = mentions.get(raw)
        if given and given.strip():
            return " ".join(given.split())
        index = index_of.get(int(raw))
        return catalog.items[index].title if index is not None else match.group(0)

    return MENTION.sub(name, text)


def _index_of(catalog: Catalog) -> dict[int, int]:
    return {int(item.id): item.index for item in catalog.items}


def extract_samples(
    dialogue: Dialogue, catalog: Catalog, index_of: Mapping[int, int] | None = None
) -> list[Sample]:
    """The samples of one dialogue, in message order (see the module docstring); `index_of`
    (movie id -> item) is built from the catalog when not given."""
    index_of = index_of if index_of is not None else _index_of(catalog)
    samples: list[Sample] = []
    context: list[ContextMessage] = []
    said: set[int] = set()
    for message in dialogue.messages:
        items = tuple(
            dict.fromkeys(index_of[int(raw)] for raw in MENTION.findall(message.text) if int(raw) in index_of)
        )
        if not message.seeker:
            for item in items:
                samples.append(
                    Sample(dialogue.conversation_id, message.message_id, item, item in said, tuple(context))
                )
        context.append(
            ContextMessage(render(message.text, dialogue.mentions, catalog, index_of), message.seeker, items)
        )
        said.update(items)
    return samples


def extract_all(dialogues: Iterable[Dialogue], catalog: Catalog) -> list[Sample]:
    index_of = _index_of(catalog)
    return [sample for dialogue in dialogues for sample in extract_samples(dialogue, catalog, index_of)]


def summarise(ranks: Sequence[int | None]) -> dict[str, float | int]:
    """Recall@1/10/50 and MRR of 1-based ranks (None entries are not samples of this setting)."""
    kept = [rank for rank in ranks if rank is not None]
    n = len(kept)
    metrics: dict[str, float | int] = {"samples": n}
    for k in CUTOFFS:
        metrics[f"R@{k}"] = round(sum(rank <= k for rank in kept) / n, 4) if n else 0.0
    metrics["MRR"] = round(sum(1.0 / rank for rank in kept) / n, 4) if n else 0.0
    return metrics


def protocol_metrics(rows: Sequence[Mapping[str, object]]) -> dict[str, dict[str, float | int]]:
    """`metrics.json` from `samples.jsonl` rows (`rank`, `rank_new`, `repeat`)."""
    ranks = [int(row["rank"]) for row in rows]  # type: ignore[call-overload]
    ranks_new = [None if row["rank_new"] is None else int(row["rank_new"]) for row in rows]  # type: ignore[call-overload]
    repeats = sum(bool(row["repeat"]) for row in rows)
    return {
        "all": summarise(ranks),
        "new": summarise(ranks_new),
        "repeats": {"samples": repeats, "share": round(repeats / len(rows), 4) if rows else 0.0},
    }
