"""The avro format over a real broker and Schema Registry (our registry test server, or
HUB_TEST_SCHEMA_REGISTRY): schemas registered by subject, wire format, every type back."""
from __future__ import annotations

import json
import urllib.request

import pytest

from runtime.batch import ChangeBatch
from tests.conformance.harness import CollectSink, CollectStore, ListSource, run_job
from tests.integration.kafka.helpers import sink, source
from tests.unit.formats.test_format_debezium import ROWS, SCHEMA

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def test_avro_through_kafka_and_the_registry(kafka_server, schema_registry_url, tmp_path):
    topic = kafka_server.create_topic(partitions=2)
    batch = ChangeBatch(SCHEMA, "cu", rows=ROWS, before=[None, ROWS[0]], ts_ms=[10, 20])
    run_job(ListSource([[batch]]), sink(kafka_server, topic=topic, format="avro",
                                        **{"key-format": "avro",
                                           "schema-registry-url": schema_registry_url}),
            str(tmp_path / "w"), parallelism=1)
    with urllib.request.urlopen(f"{schema_registry_url}/subjects") as r:
        subjects = json.loads(r.read())
    assert {f"{topic}-value", f"{topic}-key"} <= set(subjects)
    msgs = kafka_server.consume_all(topic)
    assert all(m.value()[0] == 0 and len(m.value()) > 5 for m in msgs)  # magic byte + id
    got = []

    class Keep(CollectSink):
        def create_writer(self, context, state):
            w = super().create_writer(context, state)
            w.write = lambda b: got.append(b)
            return w

    run_job(source(kafka_server, topics=[topic], format="avro",
                   **{"schema-registry-url": schema_registry_url, "event-time": "payload"}),
            Keep(CollectStore()), str(tmp_path / "r"), parallelism=1)
    rows = sorted((r, op, b, ts) for g in got for r, op, b, ts in
                  zip(g.rows(), g.ops, g.before or [None] * len(g), g.ts_ms_list()))
    assert [r for r, *_ in rows] == sorted(ROWS)
    assert all(g.schema == SCHEMA for g in got)  # exact types and the key from the key schema
    assert [(op, b, ts) for _, op, b, ts in rows] == [("c", None, 10), ("u", ROWS[0], 20)]


def test_avro_event_time_of_zero_is_kept(schema_registry_url):
    """ts_ms 0 in the envelope is the epoch, not a missing time (the message timestamp)."""
    from formats.registry import resolve_message_format

    fmt = resolve_message_format("avro", {"schema-registry-url": schema_registry_url})
    batch = ChangeBatch(SCHEMA, "cc", rows=ROWS, ts_ms=[0, 20])
    topic = f"zero-ts-{id(batch)}"
    values = fmt.encoder().encode(batch, topic)
    out = fmt.decoder().decode([None, None], values, [999, 999], topic)
    assert out.bad == [] and [ts for e in out.elements for ts in e.ts_ms_list()] == [0, 20]
