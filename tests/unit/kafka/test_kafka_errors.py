"""The one translation of confluent-kafka's errors, with the client's own ``KafkaError`` and
``KafkaException`` objects (built directly, as librdkafka reports them): credentials, ACLs,
missing topics and invalid configuration are terminal with one line naming the brokers and
the topic; lost connections, timeouts, coordinator and leader changes are transient."""
from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from runtime.errors import TerminalError, TransientError
from formats.clients.kafka import is_transient, kafka_error, kafka_errors, translate
from sources.kafka.fetcher import runs_of

TERMINAL = ["_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "TOPIC_AUTHORIZATION_FAILED",
            "GROUP_AUTHORIZATION_FAILED", "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
            "CLUSTER_AUTHORIZATION_FAILED", "UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC",
            "_INVALID_ARG", "INVALID_CONFIG", "MSG_SIZE_TOO_LARGE"]
TRANSIENT = ["_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT",
             "NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION",
             "LEADER_NOT_AVAILABLE", "REQUEST_TIMED_OUT", "PRODUCER_FENCED",
             "CONCURRENT_TRANSACTIONS"]


@pytest.mark.parametrize("name", TERMINAL)
def test_terminal_codes(name):
    # librdkafka marks some of them retriable (an unknown topic may be about to appear):
    # the table decides, not the flag
    err = KafkaError(getattr(KafkaError, name), retriable=True)
    assert not is_transient(err)
    assert type(kafka_error(err, "kafka sink", "writing", "b:9092", "t")) is TerminalError


@pytest.mark.parametrize("name", TRANSIENT)
def test_transient_codes(name):
    err = KafkaError(getattr(KafkaError, name))  # not flagged retriable: the table decides
    assert is_transient(err)
    assert type(kafka_error(err, "kafka source", "consuming", "b:9092")) is TransientError


def test_other_codes_follow_the_clients_flags():
    code = KafkaError.INVALID_TXN_STATE
    assert not is_transient(KafkaError(code))
    assert is_transient(KafkaError(code, retriable=True))
    assert is_transient(KafkaError(code, fatal=True))
    assert is_transient(KafkaError(code, txn_requires_abort=True))


def test_one_line_naming_brokers_topic_and_what_to_check():
    denied = KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED, "Authentication failed")
    assert str(kafka_error(denied, "kafka sink", "connecting", "b1:9092,b2:9092")) == (
        "kafka sink: connecting at b1:9092,b2:9092: SASL_AUTHENTICATION_FAILED: "
        "Authentication failed (check the credentials in properties: security.protocol, "
        "sasl.*, ssl.*, and the principal's ACLs)")
    gone = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Unknown topic or partition")
    line = str(kafka_error(gone, "kafka source", "consuming", "b:9092", "orders", 2))
    assert line.startswith("kafka source: consuming at b:9092 (topic orders[2]): "
                           "UNKNOWN_TOPIC_OR_PART: ")
    assert "\n" not in line and line.endswith("create it)")


def test_exceptions_are_translated_and_others_left_alone():
    down = KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    with pytest.raises(TransientError, match="^kafka sink: committing checkpoint 3 at b:9092: "
                                             "_ALL_BROKERS_DOWN: 1/1 brokers are down$") as e:
        with kafka_errors("kafka sink", "committing checkpoint 3", "b:9092"):
            raise down
    assert e.value.__cause__ is down
    bug = KeyError("x")
    assert translate(bug, "kafka sink", "writing", "b:9092") is bug
    with pytest.raises(KeyError):
        with kafka_errors("kafka sink", "writing", "b:9092"):
            raise bug


def test_invalid_client_configuration_is_terminal():
    with pytest.raises(TerminalError, match=r"^kafka sink: creating the producer at b:9092: "
                                            r"_INVALID_ARG: No such configuration property"):
        with kafka_errors("kafka sink", "creating the producer", "b:9092"):
            Producer({"bootstrap.servers": "b:9092", "no.such.property": 1})


def test_transient_error_events_in_a_take_are_logged_not_raised(caplog):
    """Before: an event the client did not flag retriable (a lost connection, as librdkafka
    reports it) ended the pipeline with an error that was neither transient nor terminal."""
    lost = KafkaError(KafkaError._TRANSPORT, "Disconnected")
    msg = Message(topic="t", partition=0, offset=4, key=b"k", value=b"{}", timestamp=(1, 5))
    with caplog.at_level(logging.WARNING):
        [run] = runs_of([Message(error=lost), msg], "b:9092")
    assert run.offsets.tolist() == [4]
    assert "kafka source: consuming at b:9092: _TRANSPORT: Disconnected (the client retries)" \
        in caplog.text


def test_sink_check_with_no_broker_up_is_transient():
    """Before: a plain error, neither transient nor terminal: a broker down at start ended the
    hub instead of being retried as [restart] says."""
    from sinks.kafka.config import KafkaSinkConfig
    from sinks.kafka.sink import KafkaSink

    sink = KafkaSink(KafkaSinkConfig(**{"bootstrap-servers": "127.0.0.1:1", "topic": "t"}))
    with pytest.raises(TransientError, match=r"^kafka sink: connecting at 127\.0\.0\.1:1: "):
        sink.check()
