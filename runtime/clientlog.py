"""Client libraries' own log lines, through our logging, one line per state change.

A client library retrying a broker that is down logs the same failure many times a second
(librdkafka: about 190 lines in 10 seconds).  :class:`ClientLog` is the logger object such a
library is given (confluent-kafka's ``logger`` setting calls its ``log(level, msg, *args)``):
it passes a message on the first time its shape is seen (digits aside: ``after 0ms`` and
``after 12ms`` are one shape), then holds repeats back, and lets one through again, with the
number held back, once ``repeat_after_s`` has passed, so a lasting problem stays visible.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from functools import lru_cache
from typing import Any

_DIGITS = re.compile(r"\d+")
#: librdkafka's own repeat counter ("..., 3 identical error(s) suppressed"): no new state.
_SUPPRESSED = re.compile(r",? \d+ identical error\(s\) suppressed")


class ClientLog:
    """A ``logging.Logger``-like sink for a client library's log lines, with repeats held back.

    Thread-safe: libraries call it from their own threads.  Picklable (by name), so a client
    configuration holding it stays plain data.
    """

    def __init__(self, name: str, repeat_after_s: float = 60.0):
        """Lines go to ``logging.getLogger(name)``; use :func:`client_log` for the shared one."""
        self.name = name
        self.repeat_after_s = repeat_after_s
        self._logger = logging.getLogger(name)
        self._lock = threading.Lock()
        #: shape -> (monotonic time it was last passed on, repeats held back since)
        self._seen: dict[str, tuple[float, int]] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (client_log, (self.name,))

    def log(self, level: int, msg: str, *args: Any) -> None:
        """What the library calls for each of its lines (the ``Logger.log`` signature)."""
        text = msg % args if args else str(msg)
        shape = _DIGITS.sub("#", _SUPPRESSED.sub("", text))
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(shape, (None, 0))
            if last is not None and now - last < self.repeat_after_s:
                self._seen[shape] = (last, held + 1)
                return
            self._seen[shape] = (now, 0)
            if len(self._seen) > 1000:  # a library logging ever-new text: forget the oldest
                del self._seen[next(iter(self._seen))]
        if held:
            text += f" ({held} more like it in the last {self.repeat_after_s:g}s)"
        self._logger.log(level, "%s", text)

    # The other Logger methods a library might call, routed through log().
    def debug(self, msg: str, *args: Any) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.log(logging.ERROR, msg, *args)


@lru_cache(maxsize=None)
def client_log(name: str) -> ClientLog:
    """The one :class:`ClientLog` of logger ``name`` in this process: every client of a
    connector shares it, so the same failure seen by the enumerator's client and each reader's
    is one line, not one per client."""
    return ClientLog(name)
