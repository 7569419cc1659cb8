"""Filesystem errors reach the runtime as transient or terminal: permissions are terminal
(retrying does not fix them), everything else may pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import TerminalError, TransientError
from runtime.fs import os_error
from tests.unit.sinks.sink_helpers import files_sink, orders, writer_context


def test_permissions_are_terminal_and_the_rest_transient():
    assert isinstance(os_error("x", PermissionError(1, "Operation not permitted")), TerminalError)
    assert isinstance(os_error("x", OSError(28, "No space left on device")), TransientError)
    assert str(os_error("files sink: writing", OSError(28, "No space left on device"))) == \
        "files sink: writing: No space left on device"


def test_a_writer_that_may_not_write_stops_instead_of_retrying():
    # /sys refuses new folders even to root: a real PermissionError, not a simulated one
    root = Path("/sys/hub-files-sink-test")
    writer = files_sink(root).create_writer(writer_context(), None)
    with pytest.raises(TerminalError, match="files sink: .*Operation not permitted"):
        writer.write(orders(range(10)))
        writer.prepare_commit(1)
    writer.close()
