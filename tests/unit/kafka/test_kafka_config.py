"""Kafka connector options: validation without a broker."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from sinks.kafka.config import KafkaSinkConfig
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.enumerator import owner


def src(**kw):
    return KafkaSourceConfig.model_validate({"bootstrap-servers": "h:1", **kw})


def test_source_needs_exactly_one_of_topics_and_pattern():
    with pytest.raises(ValidationError, match="exactly one of topics and topic-pattern"):
        src()
    with pytest.raises(ValidationError, match="exactly one"):
        src(topics=["a"], **{"topic-pattern": "a.*"})
    assert src(topics=["a"]).message_format.name == "json"


def test_source_startup_modes_need_their_options():
    with pytest.raises(ValidationError, match="startup-timestamp"):
        src(topics=["a"], **{"startup-mode": "timestamp"})
    with pytest.raises(ValidationError, match="group-id"):
        src(topics=["a"], **{"startup-mode": "group-offsets"})
    with pytest.raises(ValidationError, match="topic:partition"):
        src(topics=["a"], **{"startup-mode": "specific-offsets",
                             "startup-specific-offsets": {"a": 1}})


def test_formats_are_resolved_with_key_paths():
    with pytest.raises(ValidationError) as info:
        src(topics=["a"], format="parquet")
    assert [e["loc"] for e in info.value.errors()] == [("format",)]
    assert "not a message format" in str(info.value)
    with pytest.raises(ValidationError) as info:
        KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "t",
                                        "key-format": "json",
                                        "key-format-options": {"nope": 1}})
    assert [e["loc"] for e in info.value.errors()] == [("key-format-options", "nope")]


def test_sink_topic_template_and_owned_properties():
    c = KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "cdc.{db}.{name}"})
    assert c.topic_of("shop.orders") == "cdc.shop.orders" and c.delivery == "exactly-once"
    with pytest.raises(ValidationError, match="only {table}, {db} and {name}"):
        KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "x.{schema}"})
    with pytest.raises(ValidationError, match="transactional.id is set by the sink"):
        KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "t",
                                        "properties": {"transactional.id": "x"}})


def test_partition_owner_is_stable_and_spreads():
    owners = [owner("orders", p, 3) for p in range(9)]
    assert owners == [owner("orders", p, 3) for p in range(9)]
    assert sorted(set(owners)) == [0, 1, 2]


def test_recover_removes_log_segments_no_restored_checkpoint_names(tmp_path):
    """Segments of checkpoints that never completed, also of subtasks an earlier run with a
    higher parallelism had, are gone after recovery (nothing to commit: no broker needed)."""
    from runtime.sink import CommitContext
    from runtime.wal import WriteAheadLog
    from sinks.kafka.committer import KafkaCommitter
    from sinks.kafka.writer import wal_root

    for subtask in (0, 3):
        log = WriteAheadLog(wal_root(str(tmp_path), subtask))
        log.fs.makedirs(log.root)
        (tmp_path / "kafka-wal" / str(subtask) / "seg-7").write_bytes(b"x")
    committer = KafkaCommitter(KafkaSinkConfig.model_validate(
        {"bootstrap-servers": "h:1", "topic": "t"}))
    committer.recover([], CommitContext("p", 7, None, str(tmp_path)))
    assert list((tmp_path / "kafka-wal").iterdir()) == []


def test_options_that_would_be_ignored_are_rejected():
    """Before: accepted and never read (a start from the earliest offset instead of the
    timestamp, a registry that was never asked)."""
    with pytest.raises(ValidationError, match='startup-timestamp is read only with startup-mode '
                                              '= "timestamp" \\(startup-mode is "earliest"\\)'):
        src(topics=["a"], **{"startup-timestamp": 1_700_000_000_000})
    with pytest.raises(ValidationError, match="startup-specific-offsets is read only with"):
        src(topics=["a"], **{"startup-mode": "latest", "startup-specific-offsets": {"a:0": 5}})
    with pytest.raises(ValidationError, match='schema-registry-url is read only with format = '
                                              '"avro"'):
        src(topics=["a"], **{"schema-registry-url": "http://r:8081"})
    with pytest.raises(ValidationError, match="schema-registry-url is read only with format or "
                                              "key-format"):
        KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "t",
                                        "schema-registry-url": "http://r:8081"})
    assert src(topics=["a"], **{"startup-mode": "timestamp",
                                "startup-timestamp": 5}).startup_timestamp == 5


def _keys(**kw):
    from runtime.batch import ChangeBatch
    from runtime.schema import Column, TableSchema
    from runtime.types import T

    cfg = KafkaSinkConfig.model_validate({"bootstrap-servers": "h", "topic": "t", **kw})
    schema = TableSchema("shop.orders", (Column("id", T("INT"), False),
                                         Column("v", T("STRING"))), ("id",))
    batch = ChangeBatch(schema, "c", rows=[(7, "x")], ts_ms=[1])
    return cfg.key_message_format.name, cfg.key_message_format.encoder().encode_keys(batch, "t")


def test_key_format_follows_the_value_format_where_it_has_a_key_form():
    """Before: keys were plain JSON whatever the value format, so a Debezium consumer got
    ``{"id":7}`` instead of Debezium's key (schema + payload with schema-include)."""
    name, keys = _keys(format="debezium-json", **{"format-options": {"schema-include": True}})
    assert name == "debezium-json"
    assert keys[0].startswith(b'{"schema":{"type":"struct","fields":[{"type":"int32",'
                              b'"optional":false,"field":"id"}],"optional":false,'
                              b'"name":"hub.shop.orders.Key"},"payload":{"id":7}}')
    assert _keys(format="debezium-json")[1] == [b'{"id":7}']
    assert _keys(format="maxwell-json")[0] == "maxwell-json"
    # formats without a key form of their own: json keys
    assert _keys(format="canal-json") == ("json", [b'{"id":7}'])
    assert _keys(format="raw")[0] == "json"
    # an explicit key-format wins, with its own options only
    assert _keys(format="debezium-json", **{"key-format": "json",
                                            "format-options": {"schema-include": True}}
                 ) == ("json", [b'{"id":7}'])
    # key-format-options without key-format lie over the value format's options
    name, keys = _keys(format="debezium-json", **{
        "format-options": {"schema-include": True},
        "key-format-options": {"schema-include": False}})
    assert keys == [b'{"id":7}']
    with pytest.raises(ValidationError, match="nope"):
        _keys(format="debezium-json", **{"key-format-options": {"nope": 1}})
