"""librdkafka's own log lines go through our logging, one line per state change: a Kafka
source and sink pointed at a closed port for a few seconds log a handful of lines, not ~20 a
second, and nothing bypasses logging to stderr.  Real clients, no broker."""
from __future__ import annotations

import logging
import pickle
import socket
import time

import pytest

from runtime.clientlog import ClientLog, client_log
from sinks.kafka.config import KafkaSinkConfig
from sources.kafka.config import KafkaSourceConfig


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nobody listens


def test_a_broker_down_is_a_handful_of_lines(caplog: pytest.LogCaptureFixture,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    from confluent_kafka import Consumer, Producer

    client_log.cache_clear()  # no repeats held back from an earlier test
    servers = f"127.0.0.1:{_closed_port()}"
    source = KafkaSourceConfig.model_validate({"bootstrap-servers": servers, "topics": ["t"]})
    sink = KafkaSinkConfig.model_validate({"bootstrap-servers": servers, "topic": "t",
                                           "delivery": "at-least-once"})
    caplog.set_level(logging.DEBUG)
    consumers = [Consumer(source.client_config()) for _ in range(2)]  # enumerator, reader
    for c in consumers:
        c.subscribe(["t"])
    producer = Producer(sink.producer_config())
    end = time.monotonic() + 4
    while time.monotonic() < end:
        for c in consumers:
            c.poll(0.2)
        producer.produce("t", b"x")
        producer.poll(0.2)
    for c in consumers:
        c.close()
    producer.purge()
    producer.flush(1)
    lines = [r for r in caplog.records if r.name in ("sources.kafka.client", "sinks.kafka.client")]
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]
    assert any("Connection refused" in r.getMessage() for r in lines)
    assert "rdkafka" not in capfd.readouterr().err  # nothing around our logging


def test_repeats_are_held_back_then_counted(caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    log = ClientLog("test.clientlog", repeat_after_s=60)
    caplog.set_level(logging.DEBUG, "test.clientlog")
    for ms in range(50):
        log.log(logging.ERROR, "%s: connect failed (after %dms)", "FAIL", ms)
    log.log(logging.ERROR, "FAIL: connect failed (after 0ms, 7 identical error(s) suppressed)")
    log.log(logging.WARNING, "all brokers down")
    now[0] += 61
    log.log(logging.ERROR, "FAIL: connect failed (after 3ms)")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "FAIL: connect failed (after 0ms)"),
        (logging.WARNING, "all brokers down"),
        (logging.ERROR, "FAIL: connect failed (after 3ms) (50 more like it in the last 60s)")]


def test_a_client_configuration_stays_picklable() -> None:
    conf = KafkaSinkConfig.model_validate({"bootstrap-servers": "h:1", "topic": "t"}
                                          ).producer_config()
    assert pickle.loads(pickle.dumps(conf))["logger"] is client_log("sinks.kafka.client")
