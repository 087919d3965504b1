"""What every conversation of one run shares: the run, its dataset and policy, its targets.

Built once per run and inherited by forked worker processes (nothing is pickled); the rule-user
conversation (`crs.evaluation.runner`) and the spoken one (`crs.evaluation.spoken`) both read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crs.data import Dataset
from crs.env import Policy
from crs.evaluation.records import ConversationRecord, RunInfo, TurnRecord, build_record
from crs.protocol import Target
from crs.settings import RunSpec
from crs.types import Termination


@dataclass
class RunContext:
    spec: RunSpec
    dataset: Dataset
    policy: Policy
    pairs: np.ndarray  # the shuffled target pairs (crs.protocol.target_pairs)
    cache_dir: Path | None = None  # where the LLM user's model and response cache live

    @property
    def info(self) -> RunInfo:
        spec = self.spec
        return RunInfo(self.dataset.name, spec.split, spec.policy, spec.simulator, spec.seed)

    def record(
        self,
        target: Target,
        turns: Iterable[TurnRecord],
        accepted_item: int | None,
        termination: Termination,
        extra: dict[str, Any] | None = None,
    ) -> ConversationRecord:
        """The record of conversation `target.conversation_id` of this run."""
        return build_record(
            self.info,
            self.dataset.catalog,
            target.conversation_id,
            target.user_id,
            target.item,
            turns,
            accepted_item,
            termination,
            extra,
        )
