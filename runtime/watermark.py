"""Event-time watermarks: per-split generation, merged by minimum.

Each split gets a generator with bounded out-of-orderness: its watermark is the largest event
time seen minus the allowed lateness.  A split that produced nothing for ``idle_timeout`` is
idle and does not hold the reader's watermark back; a finished split is dropped.  A reader's
watermark is the minimum over its active splits; an operator's the minimum over its inputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from runtime.units import parse_duration


@dataclass(frozen=True)
class WatermarkStrategy:
    """``out_of_orderness_ms``: how late events may arrive; ``idle_timeout_s``: after how long
    without data a split stops holding watermarks back (0 = never)."""

    out_of_orderness_ms: int = 0
    idle_timeout_s: float = 60.0

    @classmethod
    def of(cls, out_of_orderness: str | float = 0, idle_timeout: str | float = "60s") -> WatermarkStrategy:
        return cls(int(parse_duration(out_of_orderness) * 1000), parse_duration(idle_timeout))


class SplitWatermarks:
    """Watermark generators of the splits of one reader (one thread; no locking)."""

    def __init__(self, strategy: WatermarkStrategy, clock=time.monotonic):
        self.strategy = strategy
        self._clock = clock
        self._max_ts: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self._emitted: int | None = None

    def on_batch(self, split_id: str, max_ts: int | None) -> None:
        """A batch with largest event time ``max_ts`` came from ``split_id``."""
        self._last_seen[split_id] = self._clock()
        if max_ts is not None and max_ts > self._max_ts.get(split_id, -(2**63)):
            self._max_ts[split_id] = max_ts

    def split_finished(self, split_id: str) -> None:
        self._max_ts.pop(split_id, None)
        self._last_seen.pop(split_id, None)

    def current(self) -> int | None:
        """The reader's watermark: min over active (non-idle) splits; None if none active."""
        now = self._clock()
        idle = self.strategy.idle_timeout_s
        active = [ts for sid, ts in self._max_ts.items()
                  if not idle or now - self._last_seen.get(sid, now) < idle]
        if not active:
            return None
        return min(active) - self.strategy.out_of_orderness_ms - 1

    def advance(self) -> int | None:
        """The new watermark to emit if it moved forward since the last call, else None.
        Watermarks never go backwards (a split coming back from idle can't lower them)."""
        wm = self.current()
        if wm is not None and (self._emitted is None or wm > self._emitted):
            self._emitted = wm
            return wm
        return None


def merge_min(watermarks: list[int | None]) -> int | None:
    """An operator's watermark: the minimum over inputs; None while any input has none."""
    if not watermarks or any(w is None for w in watermarks):
        return None
    return min(w for w in watermarks if w is not None)
