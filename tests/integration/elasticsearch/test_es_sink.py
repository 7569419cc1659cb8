"""Elasticsearch sink against a real Elasticsearch-API server: mappings and their evolution,
versioned writes, per-item failures, at-least-once delivery."""
from __future__ import annotations

import json
import logging
import uuid
from decimal import Decimal

import numpy as np
import pytest

from runtime.batch import ChangeBatch
from runtime.checkpoint.committer_task import CheckpointCommitted, CommitCheckpoint, CommitterTask
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError, TerminalError
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.sink import ElasticsearchSink

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

V1 = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                 Column("amount", T("DECIMAL(10,2)"))), ("id",))
V2 = V1.with_columns(V1.columns + (Column("doc", T("JSON")),))


@pytest.fixture
def make(elasticsearch_server, tmp_path):
    prefix = f"it-{uuid.uuid4().hex[:10]}"

    def make(**options) -> tuple[ElasticsearchSink, str]:
        cfg = ElasticsearchSinkConfig.model_validate({
            "hosts": [elasticsearch_server.url], **elasticsearch_server.options,
            "index": prefix + "-{table}", "refresh-after-commit": True,
            **{k.replace("_", "-"): v for k, v in options.items()}})
        return ElasticsearchSink(cfg), f"{prefix}-orders"
    return make


def commit(sink, batches, cid=1, tmp=None, dead_letter=None):
    dead_letter = dead_letter or DeadLetterQueue()
    ctx = WriterContext("it", 0, 1, uuid.uuid4().hex[:6], str(tmp), dead_letter)
    writer = sink.create_writer(ctx, None)
    for b in batches:
        writer.write(b)
    committables = writer.prepare_commit(cid)
    sink.create_committer().commit(committables,
                                   CommitContext("it", cid, None, dead_letter=dead_letter))
    writer.close()


def docs(server, index) -> dict:
    es = server.client()
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000, version=True)["hits"]["hits"]
    es.close()
    return {h["_id"]: (h["_version"], h["_source"]) for h in hits}


def batch(schema, ops, rows, versions):
    return ChangeBatch(schema, ops, rows=rows, versions=np.array(versions, dtype=np.int64))


def test_server_answers_a_version_conflict_as_elasticsearch_does(elasticsearch_server):
    """What the sink relies on to tell a replay from a lost change: a 409 item whose reason
    names the stored and the provided version (Elasticsearch's and OpenSearch's wording)."""
    from sinks.elasticsearch.client import version_conflict

    index = f"it-{uuid.uuid4().hex[:10]}"
    es = elasticsearch_server.client()
    try:
        def bulk(version: int) -> dict:
            action = {"index": {"_index": index, "_id": "k", "version": version,
                                "version_type": "external"}}
            (item,) = es.bulk(operations=[action, {"x": version}])["items"]
            return item["index"]

        assert bulk(5)["status"] == 201
        replay, stale = bulk(5), bulk(3)
        assert (replay["status"], stale["status"]) == (409, 409)
        assert stale["error"]["type"] == "version_conflict_engine_exception"
        assert version_conflict(0, replay).is_replay
        conflict = version_conflict(0, stale)
        assert (conflict.provided, conflict.current, conflict.is_replay) == (3, 5, False)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


def test_the_sink_tells_opensearch_from_elasticsearch_by_itself(make, elasticsearch_server,
                                                               tmp_path):
    """Without ``compatibility-mode`` the sink asks the server what it is and speaks its
    dialect: OpenSearch refuses the elasticsearch client's compatibility media type with 406,
    Elasticsearch takes it.  Explicit true/false still win (a server needing the other dialect
    answers 406, one line naming the request)."""
    sink, index = make()  # no compatibility-mode: the default
    commit(sink, [batch(V1, "c", [(1, "a", Decimal("1.50"))], [10])], tmp=tmp_path)
    assert docs(elasticsearch_server, index) == {
        "1": (10, {"id": 1, "name": "a", "amount": "1.50"})}
    assert sink.config.compatibility_mode == "auto"
    from sinks.elasticsearch.client import server_distribution

    distribution = server_distribution(sink.config)
    if distribution == "opensearch":
        sink, _ = make(compatibility_mode=True)
        with pytest.raises(TerminalError, match="406"):
            commit(sink, [batch(V1, "c", [(2, "b", Decimal("1"))], [10])], cid=2, tmp=tmp_path)
    sink, _ = make(compatibility_mode=distribution != "opensearch")
    commit(sink, [batch(V1, "c", [(3, "c", Decimal("3"))], [10])], cid=3, tmp=tmp_path)
    assert set(docs(elasticsearch_server, index)) == {"1", "3"}


def test_mapping_from_schema_then_a_new_column(make, elasticsearch_server, tmp_path):
    sink, index = make()
    commit(sink, [batch(V1, "c", [(1, "a", Decimal("1.50"))], [10])], tmp=tmp_path)
    commit(sink, [batch(V2, "u", [(1, "b", Decimal("2.25"), '{"k": [1, 2]}')], [11])],
           cid=2, tmp=tmp_path)
    es = elasticsearch_server.client()
    props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    es.close()
    assert props["amount"]["type"] == "scaled_float" and props["id"]["type"] == "long"
    assert "doc" in props
    assert docs(elasticsearch_server, index) == {
        "1": (11, {"id": 1, "name": "b", "amount": "2.25", "doc": {"k": [1, 2]}})}


def test_versions_make_late_and_repeated_changes_no_ops(make, elasticsearch_server, tmp_path):
    sink, index = make()
    commit(sink, [batch(V1, "cc", [(1, "new", None), (2, "two", None)], [10, 10])], tmp=tmp_path)
    # an older update, the same change again, an older delete: all refused (in two commits:
    # one writer's changes of a key going back in version would stop the pipeline)
    commit(sink, [batch(V1, "uu", [(1, "old", None), (2, "two", None)], [5, 10])], cid=2,
           tmp=tmp_path)
    commit(sink, [batch(V1, "d", [(1, "x", None)], [3])], cid=3, tmp=tmp_path)
    assert docs(elasticsearch_server, index) == {"1": (10, {"id": 1, "name": "new", "amount": None}),
                                                 "2": (10, {"id": 2, "name": "two", "amount": None})}
    # a newer delete wins, and its tombstone refuses an older insert arriving after it
    commit(sink, [batch(V1, "d", [(2, None, None)], [20])], cid=4, tmp=tmp_path)
    commit(sink, [batch(V1, "c", [(2, "zombie", None)], [15])], cid=5, tmp=tmp_path)
    assert set(docs(elasticsearch_server, index)) == {"1"}


def test_rejected_documents_name_index_and_id(make, elasticsearch_server, tmp_path):
    sink, index = make()
    es = elasticsearch_server.client()
    # an index made by someone else, where "name" is a number: our text can't go there
    es.indices.create(index=index, mappings={"properties": {"name": {"type": "long"}}})
    es.close()
    rows = [(1, "not a number", None), (2, "42", None)]
    with pytest.raises(BadRecordError, match=rf"index {index} id '1'.*400"):
        commit(sink, [batch(V1, "cc", rows, [1, 1])], tmp=tmp_path)
    dlq = DeadLetterQueue("all", str(tmp_path / "dlq"), "it")
    sink, _ = make()
    commit(sink, [batch(V1, "cc", rows, [2, 2])], tmp=tmp_path, dead_letter=dlq)
    assert dlq.count == 1
    assert set(docs(elasticsearch_server, index)) == {"2"}


def test_a_committer_that_never_met_a_writer_sends_refused_documents_to_the_jobs_dead_letters(
        make, elasticsearch_server, tmp_path):
    """The committer gets the dead letters from the runtime with each commit, as in a
    distributed executor where the writers ran in other processes: here the segment is
    prepared through another sink object, and the commit runs in the committer task."""
    writer_side, index = make()
    es = elasticsearch_server.client()
    es.indices.create(index=index, mappings={"properties": {"name": {"type": "long"}}})
    es.close()
    committables = _prepare(writer_side, [batch(V1, "cc", [(1, "not a number", None),
                                                           (2, "42", None)], [1, 1])], 1, tmp_path)
    committer_side, _ = make()
    dlq = DeadLetterQueue("all", str(tmp_path / "dlq"), "it")
    task = CommitterTask(committer_side.create_committer(), "it", str(tmp_path), "job",
                         dead_letter=dlq)
    report = task.process(CommitCheckpoint(1, committables, None))
    assert isinstance(report, CheckpointCommitted), report
    assert dlq.count == 1
    with open(dlq.file) as f:
        (entry,) = [json.loads(line) for line in f]
    assert entry["origin"] == f"elasticsearch:{index}" and entry["record"]["id"] == 1
    assert set(docs(elasticsearch_server, index)) == {"2"}


def test_at_least_once_writes_without_the_log(make, elasticsearch_server, tmp_path):
    sink, index = make(delivery="at-least-once", bulk_max_actions=2)
    ctx = WriterContext("it", 0, 1, "a", str(tmp_path))
    writer = sink.create_writer(ctx, None)
    writer.write(batch(V1, "ccc", [(i, f"n{i}", None) for i in range(3)], [1, 2, 3]))
    assert writer.prepare_commit(1) == []
    writer.close()
    assert set(docs(elasticsearch_server, index)) == {"0", "1", "2"}
    assert not (tmp_path / "wal").exists()


def _prepare(sink, batches, cid, tmp):
    writer = sink.create_writer(WriterContext("it", 0, 1, uuid.uuid4().hex[:6], str(tmp)), None)
    for b in batches:
        writer.write(b)
    committables = writer.prepare_commit(cid)
    writer.close()
    return committables


def test_writes_refused_for_older_versions_are_counted_and_warned(
        make, elasticsearch_server, tmp_path, caplog):
    sink, index = make()
    committer = sink.create_committer()
    committer.commit(_prepare(sink, [batch(V1, "cc", [(1, "a", None), (2, "b", None)], [10, 10])],
                              1, tmp_path), CommitContext("it", 1, None))
    assert committer.refused_writes["shop.orders"].stale == 0
    # the source's versions went backwards (a binlog reset): key 1 at 5 and 7 where 10 is,
    # and key 2 written again at 10 (a replay)
    with caplog.at_level(logging.INFO, logger="sinks.elasticsearch"):
        committer.commit(_prepare(sink, [batch(V1, "uu", [(1, "x", None), (2, "b", None)], [5, 10]),
                                         batch(V1, "u", [(1, "y", None)], [7])], 2, tmp_path),
                         CommitContext("it", 2, None))
    refused = committer.refused_writes["shop.orders"]
    assert (refused.index, refused.replays, refused.stale) == (index, 1, 1)  # 1@5 is not sent
    assert refused.example == "id '1': version 7, the index has 10"
    assert committer.gauges() == {"refused_stale_writes": 1, "refused_replayed_writes": 1}
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert f"index {index} refused 1 writes of table shop.orders" in text
    assert "id '1': version 7, the index has 10" in text and "went backwards" in text
    assert any("already had 1 writes" in r.getMessage() for r in caplog.records
               if r.levelno == logging.INFO)
    assert docs(elasticsearch_server, index)["1"] == (10, {"id": 1, "name": "a", "amount": None})
    committer.close()


def test_at_least_once_counts_refused_writes_too(make, elasticsearch_server, tmp_path, caplog):
    sink, index = make(delivery="at-least-once")
    writer = sink.create_writer(WriterContext("it", 0, 1, "a", str(tmp_path)), None)
    writer.write(batch(V1, "c", [(1, "a", None)], [10]))
    writer.prepare_commit(1)
    with caplog.at_level(logging.WARNING, logger="sinks.elasticsearch"):
        writer.write(batch(V1, "u", [(1, "b", None)], [4]))
        writer.prepare_commit(2)
    assert writer.refused_writes["shop.orders"].stale == 1
    assert "again after a restart" in caplog.records[-1].getMessage()
    writer.close()


def test_versions_of_a_key_going_back_in_one_writer_stop_the_commit(make, elasticsearch_server,
                                                                    tmp_path):
    sink, index = make()
    committables = _prepare(sink, [batch(V1, "cu", [(1, "a", None), (2, "b", None)], [100, 101]),
                                   batch(V1, "u", [(1, "c", None)], [7])], 1, tmp_path)
    with pytest.raises(TerminalError, match=r"table shop\.orders: the versions of key '1' go "
                                            r"backwards \(change #0 has version 100, the later "
                                            rf"change #2 version 7\).*delete index {index}"):
        sink.create_committer().commit(committables, CommitContext("it", 1, None))
