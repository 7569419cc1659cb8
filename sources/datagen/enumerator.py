"""Creates the datagen splits once and hands them out."""
from __future__ import annotations

from typing import Any

from runtime.source import EnumeratorContext, SplitEnumerator
from sources.datagen.split import DatagenSplit


class DatagenEnumerator(SplitEnumerator):
    """State: whether the splits were created, and those not handed out yet (small)."""

    def __init__(self, context: EnumeratorContext, splits: list[DatagenSplit], created: bool,
                 bounded: bool):
        self.context = context
        self.pending = splits
        self.created = created
        self.bounded = bounded

    def handle_split_request(self, subtask: int) -> None:
        p = self.context.parallelism
        mine = [s for s in self.pending if s.index % p == subtask] or self.pending[:1]
        if mine:
            self.pending = [s for s in self.pending if s not in mine]
            self.context.assign_splits({subtask: mine})
        elif self.bounded:
            self.context.signal_no_more_splits(subtask)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        return {"created": self.created, "pending": [s.to_dict() for s in self.pending]}
