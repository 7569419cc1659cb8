"""Bounded channels between subtasks.

An :class:`InputGate` is the input side of one consumer subtask: one bounded FIFO per upstream
producer.  A producer blocks in :meth:`InputGate.put` while its channel is full (backpressure:
a slow sink slows its sources down, memory stays bounded).  Full means ``capacity`` elements,
or ``max_bytes`` of batch data (:func:`nbytes`: a batch's Arrow size), whichever comes first:
a count alone bounds nothing when batches can be of any size.  A channel always takes one
element when it is empty, however large, so that an oversized batch passes instead of
blocking its producer for ever.  The consumer takes elements from
any channel that is not *blocked*; blocking a channel is how checkpoint barriers are aligned
where inputs merge: after a barrier arrives on one input, that input is held back until the same
barrier arrived on every other input.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from runtime.batch import ChangeBatch

#: Default byte budget of one channel (see ``Job.channel_bytes``).
DEFAULT_CHANNEL_BYTES = 64 * 1024 * 1024


def nbytes(element: Any) -> int:
    """What ``element`` weighs in a channel: a batch its Arrow data (``RecordBatch.nbytes``)
    or, for a batch still held as row tuples, an estimate of it from the first row (never a
    loop over rows); control elements (barriers, watermarks, schema changes) nothing."""
    if type(element) is not ChangeBatch:
        return 0
    if element.has_arrow:
        return element.arrow().nbytes
    rows = element.rows()
    if not rows:
        return 0
    row = 0
    for v in rows[0]:
        row += len(v) + 4 if isinstance(v, (str, bytes, bytearray)) else 8
    return row * len(rows)


class ChannelClosed(Exception):
    """The gate was closed (pipeline cancelled) while a producer or consumer waited."""


class InputGate:
    """``num_inputs`` bounded FIFO channels read by one consumer.  Thread-safe."""

    def __init__(self, num_inputs: int, capacity: int = 8, max_bytes: int | None = None):
        if num_inputs < 1 or capacity < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("an input gate needs at least one input, capacity 1 and a "
                             "byte budget of at least 1")
        self.num_inputs = num_inputs
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._queues: list[deque[tuple[Any, int]]] = [deque() for _ in range(num_inputs)]
        self._bytes = [0] * num_inputs
        self._blocked = [False] * num_inputs
        self._closed = False
        self._next = 0  # round-robin start, so no input starves another
        #: seconds producers waited for room in a full channel (backpressure), in total
        self.waited_s = 0.0
        self._cond = threading.Condition()

    def put(self, channel: int, element: Any) -> None:
        """Append ``element`` to ``channel``; blocks while the channel is full (by count, or
        by bytes unless it is empty)."""
        size = nbytes(element) if self.max_bytes is not None else 0
        with self._cond:
            q = self._queues[channel]
            waited_from = 0.0
            while not self._closed and (
                    len(q) >= self.capacity
                    or (q and self.max_bytes is not None
                        and self._bytes[channel] + size > self.max_bytes)):
                waited_from = waited_from or time.monotonic()
                self._cond.wait()
            if waited_from:
                self.waited_s += time.monotonic() - waited_from
            if self._closed:
                raise ChannelClosed()
            q.append((element, size))
            self._bytes[channel] += size
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> tuple[int, Any] | None:
        """The next ``(channel, element)`` from an unblocked channel, or None on timeout."""
        with self._cond:
            while True:
                if self._closed:
                    raise ChannelClosed()
                n = self.num_inputs
                for k in range(n):
                    i = (self._next + k) % n
                    if self._queues[i] and not self._blocked[i]:
                        self._next = (i + 1) % n
                        element, size = self._queues[i].popleft()
                        self._bytes[i] -= size
                        self._cond.notify_all()  # a producer may wait for room
                        return i, element
                if not self._cond.wait(timeout) and timeout is not None:
                    return None

    def block(self, channel: int) -> None:
        """Hold ``channel`` back (its elements stay queued; its producer backs up)."""
        with self._cond:
            self._blocked[channel] = True

    def unblock_all(self) -> None:
        with self._cond:
            self._blocked = [False] * self.num_inputs
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter with :class:`ChannelClosed` (cancellation)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def queued(self) -> int:
        """Elements waiting in all channels (for backpressure metrics)."""
        with self._cond:
            return sum(len(q) for q in self._queues)

    def queued_bytes(self) -> int:
        """Bytes of the batches waiting in all channels (0 without a byte budget)."""
        with self._cond:
            return sum(self._bytes)
