"""The one retry policy of the project: exponential backoff over transient errors.

Every place that waits and tries again (a commit, a bulk request, a Thrift call, a binlog
reconnect, a pipeline restart) uses :class:`Backoff` for its delays and, where the shape is
"call, and on a transient error wait and call again", :func:`retry` for the loop itself, so
that waits, limits and log lines read the same everywhere and no loop nests inside another.
Which errors are worth another try is the connector's call, made once per client by its error
translation (:class:`~runtime.errors.TransientError` vs the others); this module only waits.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from runtime.errors import HubError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``retries`` further tries after the first (None: no limit), waiting ``initial_s`` before
    the first retry and ``multiplier`` times longer before each next one, never more than
    ``max_s``."""

    initial_s: float = 0.2
    max_s: float = 10.0
    retries: int | None = 5
    multiplier: float = 2.0

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        return min(self.max_s, self.initial_s * self.multiplier ** max(0, retry - 1))

    def exhausted(self, retry: int) -> bool:
        """Whether retry number ``retry`` (1 for the first) is beyond the limit."""
        return self.retries is not None and retry > self.retries


def retry(fn: Callable[[], T], policy: Backoff, what: str, log: logging.Logger,
          on_retry: Callable[[HubError], None] | None = None,
          stop: threading.Event | None = None) -> T:
    """``fn()``, called again after each :class:`~runtime.errors.HubError` whose ``transient``
    is set, with ``policy``'s waits; each wait is logged as one warning naming ``what``.  When
    the retries are used up, the last error is raised as a :class:`TransientError` that says
    how many retries were made (so the runtime's restart strategy still sees it as
    transient).  Other errors pass through at once.  ``on_retry(error)`` runs before each wait
    (e.g. to drop a broken connection).  A set ``stop`` event ends the waiting early by
    raising the last error."""
    attempt = 0
    while True:
        try:
            return fn()
        except HubError as exc:
            if not exc.transient:
                raise
            attempt += 1
            # an error that names ``what`` itself (a client's translation) is not told twice
            text = str(exc)
            problem = text[len(what):].lstrip(": ") if text.startswith(what) else text
            if policy.exhausted(attempt):
                if attempt == 1:
                    raise
                raise TransientError(f"{what} failed after {attempt - 1} retries: {problem}"
                                     ) from exc
            if on_retry is not None:
                on_retry(exc)
            delay = policy.delay(attempt)
            limit = "" if policy.retries is None else f" of {policy.retries}"
            log.warning("%s: %s; retry %d%s in %.1fs", what, problem, attempt, limit, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)
