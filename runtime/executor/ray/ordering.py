"""Calls put back in their sender's order: Ray keeps no order between the calls of a
threaded actor, so each sender numbers its calls and the receiver delivers them in that
order (the subtask actors' data and control calls, the enumerator host's)."""
from __future__ import annotations

import threading
from typing import Any

from runtime.channel import ChannelClosed


class InOrder:
    """Delivers items numbered 0, 1, 2... by their sender in that order, whatever order the
    calls carrying them run in.  ``deliver`` may block (a full gate): later items wait."""

    def __init__(self, deliver: Any):
        self._deliver = deliver
        self._next = 0
        self._cond = threading.Condition()
        self.closed = False

    def put(self, seq: int, item: Any) -> None:
        with self._cond:
            while seq != self._next:
                if self.closed:
                    raise ChannelClosed()
                self._cond.wait(0.5)
            try:
                self._deliver(item)
            finally:
                self._next += 1
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
