"""Crash points: ``HUB_CRASH_AT=<point>:<id>`` dies at that checkpoint, ``<point>:<id>+`` at
the first one from that id on that carries something to commit."""
from __future__ import annotations

import signal

import pytest

from runtime import faults


@pytest.fixture
def kills(monkeypatch):
    killed: list[int] = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: killed.append(sig))
    return killed


@pytest.mark.parametrize("spec, calls, dies_at", [
    ("checkpoint-stored:3", [(2, True), (3, False), (4, True)], 3),
    ("checkpoint-stored:3+", [(2, True), (3, False), (4, False), (5, True)], 5),
    ("checkpoint-stored:3+", [(3, True)], 3),
    ("checkpoint-stored", [(1, False)], 1),
    ("checkpoint-committed:3+", [(3, True)], None),
])
def test_dies_where_the_spec_says(monkeypatch, kills, spec, calls, dies_at):
    monkeypatch.setattr(faults, "_SPEC", spec)
    for checkpoint_id, carries in calls:
        faults.crash_point("checkpoint-stored", checkpoint_id, carries)
        if kills:
            assert (checkpoint_id, kills) == (dies_at, [signal.SIGKILL])
            return
    assert dies_at is None
