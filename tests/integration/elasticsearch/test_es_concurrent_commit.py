"""The segments of one commit applied at the same time: a key in two segments (a snapshot row
read by one subtask, its binlog change read by another) ends at its highest version whichever
segment is applied last, because every write carries its version."""
from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest

import runtime.wal as wal
from runtime.batch import ChangeBatch
from runtime.sink import CommitContext
from sinks.elasticsearch.committer import ElasticsearchCommitter
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.sink import ElasticsearchSink
from tests.integration.elasticsearch.test_es_sink import V1
from tests.integration.wal_exactly_once import prepare

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

KEYS = 600


class OldestLast(ElasticsearchCommitter):
    """Applies ``last`` only once every other segment was applied, in another thread: the
    newer changes land first, the older snapshot rows after them."""

    def __init__(self, config, last: str):
        super().__init__(config)
        self.last, self.others_done = last, threading.Event()
        self.seen_threads: set[str] = set()

    def apply_segment(self, applier, path, context, stop):
        self.seen_threads.add(threading.current_thread().name)
        if path == self.last:
            assert self.others_done.wait(30), "the segments were not applied concurrently"
        super().apply_segment(applier, path, context, stop)
        if path != self.last:
            self.others_done.set()


def test_a_key_in_two_segments_ends_at_its_highest_version_in_any_order(
        elasticsearch_server, tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "RUN_ROWS", 100)  # several runs per segment
    index = f"it-{uuid.uuid4().hex[:10]}-orders"
    cfg = ElasticsearchSinkConfig.model_validate({
        "hosts": [elasticsearch_server.url], **elasticsearch_server.options, "index": index,
        "refresh-after-commit": True, "apply-threads": 2, "bulk-max-actions": 50})
    sink = ElasticsearchSink(cfg)
    ids = np.arange(KEYS)
    # subtask 0 read the snapshot chunk (every key at the chunk's version 100), subtask 1 the
    # binlog after it: updates of the first half, deletes of the next sixth
    snapshot = prepare(sink, tmp_path, 0, *[
        ChangeBatch(V1, "r" * 100, rows=[(int(i), "snapshot", None) for i in ids[lo:lo + 100]],
                    versions=np.full(100, 100, dtype=np.int64)) for lo in range(0, KEYS, 100)])
    updated, deleted = ids[:KEYS // 2], ids[KEYS // 2:KEYS // 2 + KEYS // 6]
    binlog = prepare(sink, tmp_path, 1,
                     ChangeBatch(V1, "u" * len(updated),
                                 rows=[(int(i), "binlog", None) for i in updated],
                                 versions=200 + updated),
                     ChangeBatch(V1, "d" * len(deleted),
                                 rows=[(int(i), "binlog", None) for i in deleted],
                                 versions=1000 + deleted))
    committer = OldestLast(cfg, snapshot[0]["segment"])
    committer.commit(snapshot + binlog, CommitContext("it", 1, None, str(tmp_path)))
    assert len(committer.seen_threads) == 2
    got = docs_all(elasticsearch_server, index)
    expected = {str(i): "binlog" for i in updated} | {
        str(i): "snapshot" for i in ids[KEYS // 2 + KEYS // 6:]}
    assert got == expected
    # the snapshot rows of updated and deleted keys came last, and were refused: counted as
    # older than the document (here the normal case: a snapshot row and its later change in
    # two writers of one checkpoint)
    assert committer.refused_writes["shop.orders"].stale == len(updated) + len(deleted)
    committer.close()


def docs_all(server, index) -> dict:
    es = server.client()
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=10_000)["hits"]["hits"]
    es.close()
    return {h["_id"]: h["_source"]["name"] for h in hits}
