"""Datagen splits: split ``index`` of ``count`` of one table generates the events
``index, index + count, index + 2*count, ...`` of that table."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.source import Split


@dataclass
class DatagenSplit(Split):
    table: str = ""
    index: int = 0
    count: int = 1
    #: events of this split emitted so far (its progress)
    emitted: int = 0
    #: events this split emits in all, -1 when unbounded
    total: int = -1
    #: rows inserted so far (their ids follow from it) and rows deleted (oldest first):
    #: the live rows of this split are the inserts numbered [deleted, inserted)
    inserted: int = 0
    deleted: int = 0
    start_ms: int = 0
    step_ms: float = 1.0

    @property
    def remaining(self) -> int | None:
        return None if self.total < 0 else self.total - self.emitted
