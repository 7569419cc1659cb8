"""Crash points for the exactly-once tests: kill this process with SIGKILL at a named point.

Set ``HUB_CRASH_AT=<point>:<checkpoint id>`` (e.g. ``checkpoint-stored:3``) to die right there,
exactly as ``kill -9`` would: no cleanup, no final checkpoint.  Unset (always, in production),
a crash point costs one dict lookup.  Points:

* ``checkpoint-stored``: checkpoint N is durable, its committables not yet committed.
* ``checkpoint-committed``: checkpoint N is committed, readers not yet notified.
"""
from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("HUB_CRASH_AT", "")


def crash_point(point: str, checkpoint_id: int) -> None:
    if not _SPEC:
        return
    name, _, n = _SPEC.partition(":")
    if name == point and (not n or int(n) == checkpoint_id):
        os.kill(os.getpid(), signal.SIGKILL)
