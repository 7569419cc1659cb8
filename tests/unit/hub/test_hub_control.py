"""Savepoint requests through the control folder."""
from __future__ import annotations

import os
import time

from hub.control import ControlWatcher


def test_an_unreadable_request_is_said_and_removed(tmp_path, caplog):
    served = []
    watcher = ControlWatcher(str(tmp_path), lambda name, reply, stop: served.append(name))
    os.makedirs(tmp_path / "control")
    (tmp_path / "control" / "broken.request").write_text("{not json")
    (tmp_path / "control" / "nameless.request").write_text("{}")
    (tmp_path / "control" / "good.request").write_text('{"name": "good"}')
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        while os.listdir(tmp_path / "control") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stopped.set()
        watcher.join()
    assert served == ["good"]
    assert os.listdir(tmp_path / "control") == []
    assert "ignoring the savepoint request" in caplog.text and "broken.request" in caplog.text
    assert "nameless.request (no savepoint name in it)" in caplog.text
