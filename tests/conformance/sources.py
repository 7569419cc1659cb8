"""The source cases of the conformance suite: one entry per source connector."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runtime.source import Source


@dataclass
class SourceCase:
    make: Callable[[Path, int], Source]
    expected_events: Callable[[int], int]
    allows_duplicate_rows: bool = False


def _datagen(tmp: Path, splits: int) -> Source:
    from sources.datagen.config import DatagenConfig
    from sources.datagen.source import DatagenSource

    return DatagenSource(DatagenConfig.model_validate({
        "tables": ["orders", "customers"], "rows": 3000, "batch-size": 200, "splits": splits,
        "update-ratio": 0.2, "delete-ratio": 0.1, "event-time-start": "2026-11-24T10:00:00Z"}))


SOURCE_CASES: dict[str, SourceCase] = {
    "datagen": SourceCase(_datagen, lambda splits: 2 * 3000),
}
