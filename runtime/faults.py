"""Crash points for the exactly-once tests: kill this process with SIGKILL at a named point;
and delay points, to make a step slow at a named point (a checkpoint that times out).

Set ``HUB_CRASH_AT=<point>:<checkpoint id>`` (e.g. ``checkpoint-stored:3``) to die right there,
exactly as ``kill -9`` would: no cleanup, no final checkpoint; ``<point>:<id>+`` dies at the
first checkpoint from that id on that carries something to commit (a checkpoint taken while
no data flowed, as on a loaded machine, would prove nothing).  Unset (always, in production),
a crash point costs one dict lookup.  Points:

* ``checkpoint-stored``: checkpoint N is durable, its committables not yet committed.
* ``checkpoint-committed``: checkpoint N is committed, readers not yet notified.
* connectors name their own (e.g. ``kafka-...`` in :mod:`sinks.kafka.transactions`).

``HUB_DELAY_AT=<point>:<checkpoint ids>:<seconds>`` (e.g. ``sink-ack:2,5:1.5``; no ids: every
checkpoint) sleeps there instead, once per point, checkpoint id and subtask in a process: a restart
(which numbers its checkpoints from the restored one again) is not delayed again, as a fault
that cleared.  Points:

* ``sink-ack``: a sink subtask prepared checkpoint N and has not acknowledged it yet.
"""
from __future__ import annotations

import os
import signal
import threading
import time

_SPEC = os.environ.get("HUB_CRASH_AT", "")
_DELAY = os.environ.get("HUB_DELAY_AT", "")
_delayed: set[tuple[str, int, str]] = set()


def crash_point(point: str, checkpoint_id: int, carries: bool = True) -> None:
    """Die here if ``HUB_CRASH_AT`` names this point and checkpoint; ``carries``: whether
    the checkpoint has something to commit (for the ``<id>+`` form)."""
    if not _SPEC:
        return
    name, _, n = _SPEC.partition(":")
    if name != point:
        return
    if not n or (int(n[:-1]) <= checkpoint_id and carries if n.endswith("+")
                 else int(n) == checkpoint_id):
        os.kill(os.getpid(), signal.SIGKILL)


def delay_point(point: str, checkpoint_id: int) -> None:
    if not _DELAY:
        return
    name, ids, seconds = _DELAY.split(":")
    if name == point and (not ids or str(checkpoint_id) in ids.split(",")):
        key = (point, checkpoint_id, threading.current_thread().name)  # e.g. each sink-N
        if key in _delayed:
            return
        _delayed.add(key)
        time.sleep(float(seconds))
