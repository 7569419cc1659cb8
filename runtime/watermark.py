"""Event-time watermarks: per-split generation, merged by minimum.

Each split gets a generator with bounded out-of-orderness: its watermark is the largest event
time seen minus the allowed lateness.  A split that produced nothing for ``idle_timeout`` is
idle and does not hold the reader's watermark back; a finished split is dropped.  A reader's
watermark is the minimum over its active splits; an operator's the minimum over its inputs.

A watermark value is an ``int`` (epoch ms), ``None`` (not known yet: holds everything back) or
:data:`IDLE` (this input has nothing to say and is ignored by the minimum, as Flink's idle
watermark status).  A reader without splits becomes idle after ``idle_timeout`` too, so that a
subtask with no work (fewer Kafka partitions than subtasks, the readers that only had snapshot
chunks of a MySQL source) doesn't stop event time for the whole pipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Union

from runtime.units import parse_duration


class _Idle:
    __slots__ = ()

    def __repr__(self) -> str:
        return "IDLE"


#: The watermark of an input that has nothing to say: ignored when merging.
IDLE = _Idle()
WatermarkValue = Union[int, None, _Idle]


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
        self._max_ts: dict[str, int | None] = {}
        self._last_seen: dict[str, float] = {}
        self._emitted: int | None = None
        self._idle_emitted = False
        self._empty_since: float | None = clock()

    def add_split(self, split_id: str) -> None:
        """A split was assigned: until it has events (or goes idle) it holds watermarks back."""
        self._max_ts.setdefault(split_id, None)
        self._last_seen[split_id] = self._clock()
        self._empty_since = None

    def on_batch(self, split_id: str, max_ts: int | None) -> None:
        """A batch with largest event time ``max_ts`` came from ``split_id``."""
        self._last_seen[split_id] = self._clock()
        self._empty_since = None
        prev = self._max_ts.get(split_id)
        if max_ts is not None and (prev is None or max_ts > prev):
            self._max_ts[split_id] = max_ts
        elif split_id not in self._max_ts:
            self._max_ts[split_id] = None

    def split_finished(self, split_id: str) -> None:
        self._max_ts.pop(split_id, None)
        self._last_seen.pop(split_id, None)
        if not self._max_ts:
            self._empty_since = self._clock()

    def current(self) -> WatermarkValue:
        """The reader's watermark: min over active (non-idle) splits."""
        now = self._clock()
        idle = self.strategy.idle_timeout_s
        if not self._max_ts:
            since = self._empty_since if self._empty_since is not None else now
            return IDLE if idle and now - since >= idle else None
        active = [ts for sid, ts in self._max_ts.items()
                  if not idle or now - self._last_seen.get(sid, now) < idle]
        if not active:
            return IDLE
        if any(ts is None for ts in active):
            return None
        return min(ts for ts in active if ts is not None) - self.strategy.out_of_orderness_ms - 1

    def advance(self) -> WatermarkValue:
        """What to emit now: a watermark that moved forward, :data:`IDLE` when the reader just
        became idle, else None.  Watermarks never go backwards."""
        wm = self.current()
        if wm is IDLE:
            if self._idle_emitted:
                return None
            self._idle_emitted = True
            return IDLE
        if isinstance(wm, int) and (self._emitted is None or wm > self._emitted or self._idle_emitted):
            self._idle_emitted = False
            if self._emitted is None or wm > self._emitted:
                self._emitted = wm
            return self._emitted
        return None


def merge_min(watermarks: list[WatermarkValue]) -> WatermarkValue:
    """An operator's watermark: the minimum over its inputs, ignoring idle ones; None while a
    non-idle input has none; IDLE when all are idle."""
    if not watermarks:
        return None
    active = [w for w in watermarks if w is not IDLE]
    if not active:
        return IDLE
    if any(w is None for w in active):
        return None
    return min(active)  # type: ignore[type-var]
