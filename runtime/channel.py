"""Bounded channels between subtasks.

An :class:`InputGate` is the input side of one consumer subtask: one bounded FIFO per upstream
producer.  A producer blocks in :meth:`InputGate.put` while its channel is full (backpressure:
a slow sink slows its sources down, memory stays bounded).  The consumer takes elements from
any channel that is not *blocked*; blocking a channel is how checkpoint barriers are aligned
where inputs merge: after a barrier arrives on one input, that input is held back until the same
barrier arrived on every other input.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any


class ChannelClosed(Exception):
    """The gate was closed (pipeline cancelled) while a producer or consumer waited."""


class InputGate:
    """``num_inputs`` bounded FIFO channels read by one consumer.  Thread-safe."""

    def __init__(self, num_inputs: int, capacity: int = 8):
        if num_inputs < 1 or capacity < 1:
            raise ValueError("an input gate needs at least one input and capacity 1")
        self.num_inputs = num_inputs
        self.capacity = capacity
        self._queues: list[deque[Any]] = [deque() for _ in range(num_inputs)]
        self._blocked = [False] * num_inputs
        self._closed = False
        self._next = 0  # round-robin start, so no input starves another
        self._cond = threading.Condition()

    def put(self, channel: int, element: Any) -> None:
        """Append ``element`` to ``channel``; blocks while the channel is full."""
        with self._cond:
            q = self._queues[channel]
            while len(q) >= self.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                raise ChannelClosed()
            q.append(element)
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
                        element = self._queues[i].popleft()
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
