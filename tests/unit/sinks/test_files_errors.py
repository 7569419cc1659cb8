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


def test_a_wrong_path_is_terminal_and_an_unreachable_store_transient():
    import errno

    from runtime.fs import is_unreachable

    for exc in (NotADirectoryError(errno.ENOTDIR, "Not a directory"),
                IsADirectoryError(errno.EISDIR, "Is a directory"),
                OSError(errno.EROFS, "Read-only file system")):
        assert isinstance(os_error("x", exc), TerminalError), exc
    for exc in (ConnectionError("the HDFS DataNode can't be reached"), TimeoutError("slow"),
                FileNotFoundError(errno.ENOENT, "No such file")):
        assert isinstance(os_error("x", exc), TransientError), exc
    # a file source skips a file it can't read as a bad record, but not when the store is away
    assert is_unreachable(TimeoutError()) and is_unreachable(ConnectionRefusedError())
    assert not is_unreachable(FileNotFoundError()) and not is_unreachable(PermissionError())


def test_a_files_sink_under_a_file_stops_at_check(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(TerminalError, match="is not writable"):
        files_sink(blocker / "lake").check()
