"""CheckpointStorage.ensure() on a store that does not answer (an HDFS NameNode down: nothing
listens on the port) is transient, as load_checkpoint has it: the restart loop waits for the
store instead of ending the pipeline.  A store that answers "no" stays terminal."""
from __future__ import annotations

import os

import pytest

from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import CheckpointError, CheckpointUnreachableError


def test_an_unreachable_store_is_transient_at_ensure():
    from tests.servers.common import free_port

    storage = CheckpointStorage(f"hdfs://127.0.0.1:{free_port()}/state")
    with pytest.raises(CheckpointUnreachableError,
                       match=r"NameNode at .* can.t be reached \(connection refused\)") as e:
        storage.ensure()
    assert e.value.transient
    assert "\n" not in str(e.value)


def test_a_store_that_refuses_stays_terminal_at_ensure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    storage = CheckpointStorage(os.path.join(str(blocker), "state"))
    with pytest.raises(CheckpointError) as e:
        storage.ensure()
    assert not isinstance(e.value, CheckpointUnreachableError)
    assert not getattr(e.value, "transient", False)
