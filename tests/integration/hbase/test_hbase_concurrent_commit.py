"""The segments of one commit applied at the same time: a rowkey in two segments (a snapshot
row read by one subtask, its binlog change read by another) ends at its highest version
whichever segment is applied last.  Thrift1 gives one cell timestamp per call, so the
committer settles such rowkeys by version before applying (only the segment with the highest
version writes them); the segment applied last has the highest timestamps here."""
from __future__ import annotations

import threading
import uuid

import happybase
import numpy as np
import pytest

import runtime.wal as wal
from runtime.batch import ChangeBatch
from runtime.sink import CommitContext
from runtime.wal import WriteAheadLog
from sinks.hbase.committer import Applier, HBaseCommitter
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink
from sinks.hbase.types import decode_int_key
from tests.integration.hbase.test_hbase_sink import ORDERS
from tests.integration.wal_exactly_once import prepare

pytestmark = [pytest.mark.integration, pytest.mark.hbase]

KEYS = 600


class OldestLast(HBaseCommitter):
    """Applies ``last`` only once every other segment was applied, in another thread: the
    newer changes land first, the older snapshot rows after them, at higher timestamps."""

    def __init__(self, config, last: str):
        super().__init__(config)
        self.last, self.others_done = last, threading.Event()
        self.seen_threads: set[str] = set()

    def new_applier(self):
        committer = self

        class Ordered(Applier):
            def apply_segment(self, path, skip, stamp, stop=None):
                committer.seen_threads.add(threading.current_thread().name)
                if path == committer.last:
                    assert committer.others_done.wait(30), "not applied concurrently"
                super().apply_segment(path, skip, stamp, stop)
                if path != committer.last:
                    committer.others_done.set()

        return Ordered(self.config)


def test_a_rowkey_in_two_segments_ends_at_its_highest_version_in_any_order(
        hbase_server, tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "RUN_ROWS", 100)  # several runs (timestamps) per segment
    table = f"it-{uuid.uuid4().hex[:10]}-orders"
    cfg = HBaseSinkConfig.model_validate({"host": hbase_server.host, "port": hbase_server.port,
                                          "table": table, "apply-threads": 2,
                                          "batch-size": 50})
    sink = HBaseSink(cfg)
    ids = np.arange(KEYS)
    # subtask 0 read the snapshot chunk (every key at the chunk's version 100), subtask 1 the
    # binlog after it: updates of the first half (some twice, in two runs), deletes of the
    # next sixth
    snapshot = prepare(sink, tmp_path, 0, *[
        ChangeBatch(ORDERS, "r" * 100,
                    rows=[(int(i), "snapshot", None, None) for i in ids[lo:lo + 100]],
                    versions=np.full(100, 100, dtype=np.int64)) for lo in range(0, KEYS, 100)])
    updated, deleted = ids[:KEYS // 2], ids[KEYS // 2:KEYS // 2 + KEYS // 6]
    binlog = prepare(sink, tmp_path, 1,
                     ChangeBatch(ORDERS, "u" * len(updated),
                                 rows=[(int(i), "first", None, None) for i in updated],
                                 versions=200 + updated),
                     ChangeBatch(ORDERS, "d" * len(deleted),
                                 rows=[(int(i), None, None, None) for i in deleted],
                                 versions=1000 + deleted),
                     ChangeBatch(ORDERS, "u" * 10,
                                 rows=[(int(i), "binlog", None, None) for i in updated[:10]],
                                 versions=2000 + updated[:10]))
    committer = OldestLast(cfg, snapshot[0]["segment"])
    committer.commit(snapshot + binlog, CommitContext("it", 1, None, str(tmp_path)))
    committer.close()
    assert len(committer.seen_threads) == 2
    expected = ({int(i): b"binlog" for i in updated[:10]}
                | {int(i): b"first" for i in updated[10:]}
                | {int(i): b"snapshot" for i in ids[KEYS // 2 + KEYS // 6:]})
    assert scan(hbase_server, table) == expected
    assert not WriteAheadLog.exists(snapshot[0]["segment"])


def scan(server, table) -> dict:
    conn = happybase.Connection(server.host, server.port)
    try:
        return {decode_int_key(k): v.get(b"cf:name") for k, v in conn.table(table).scan()}
    finally:
        conn.close()
