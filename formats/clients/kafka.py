"""The one translation of confluent-kafka's (librdkafka's) errors into transient and terminal
hub errors, used by the Kafka source and the Kafka sink alike (here, beside the message
formats and the schema registry client they share, so that neither connector imports the
other).

Terminal (retrying can't help: a user must change something): refused credentials or ACLs,
a topic that does not exist (the broker does not create it), invalid configuration, records
too large.  Transient (the same call may succeed later, after a restart from the latest
checkpoint): lost connections, brokers down, timeouts, coordinator and leader changes, a
fenced or aborted transaction.  A code in neither list is transient when librdkafka says it
is retriable, fatal (a new client fixes it) or needs the transaction aborted, else terminal.

Every error becomes one line: ``kafka source: <what> at <brokers>[ (topic T)]: <CODE>: <text>``
plus, for credentials and missing topics, what to check.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runtime.errors import HubError, TerminalError, TransientError

log = logging.getLogger(__name__)


def _codes(*names: str) -> frozenset[int]:
    from confluent_kafka import KafkaError

    return frozenset(getattr(KafkaError, n) for n in names if hasattr(KafkaError, n))


_AUTH = ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "TOPIC_AUTHORIZATION_FAILED",
         "GROUP_AUTHORIZATION_FAILED", "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
         "CLUSTER_AUTHORIZATION_FAILED", "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
         "UNSUPPORTED_SASL_MECHANISM", "ILLEGAL_SASL_STATE", "_SSL")
_NO_TOPIC = ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION", "TOPIC_EXCEPTION")
_TERMINAL = ("_INVALID_ARG", "_INVALID_TYPE", "INVALID_CONFIG", "_NOT_CONFIGURED",
             "_UNSUPPORTED_FEATURE", "UNSUPPORTED_VERSION", "INVALID_TRANSACTION_TIMEOUT",
             "MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_REQUIRED_ACKS",
             "POLICY_VIOLATION", "INVALID_REPLICATION_FACTOR", "INVALID_PARTITIONS",
             "UNSUPPORTED_COMPRESSION_TYPE", "UNSUPPORTED_FOR_MESSAGE_FORMAT")
_TRANSIENT = ("_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_TIMED_OUT_QUEUE",
              "_MSG_TIMED_OUT", "REQUEST_TIMED_OUT", "_RESOLVE", "NETWORK_EXCEPTION",
              "BROKER_NOT_AVAILABLE", "_WAIT_COORD", "NOT_COORDINATOR",
              "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS",
              "NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "FENCED_LEADER_EPOCH",
              "UNKNOWN_LEADER_EPOCH", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
              "KAFKA_STORAGE_ERROR", "OFFSET_NOT_AVAILABLE", "THROTTLING_QUOTA_EXCEEDED",
              "CONCURRENT_TRANSACTIONS", "_QUEUE_FULL", "_FENCED", "PRODUCER_FENCED",
              "INVALID_PRODUCER_EPOCH", "TRANSACTION_COORDINATOR_FENCED", "_FATAL",
              "_PREV_IN_PROGRESS", "_NODE_UPDATE", "REBALANCE_IN_PROGRESS",
              "UNSTABLE_OFFSET_COMMIT", "_ASSIGNMENT_LOST", "_MAX_POLL_EXCEEDED", "_DESTROY")

_tables: tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int]] | None = None


def _table() -> tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int]]:
    global _tables
    if _tables is None:  # built at first use: importing this module needs no client library
        _tables = (_codes(*_AUTH), _codes(*_NO_TOPIC), _codes(*_TERMINAL),
                   _codes(*_TRANSIENT))
    return _tables


def is_transient(err: Any) -> bool:
    """Whether a ``confluent_kafka.KafkaError`` is worth retrying (see the module doc)."""
    auth, no_topic, terminal, transient = _table()
    code = err.code()
    if code in auth or code in no_topic or code in terminal:
        return False
    if code in transient:
        return True
    return bool(err.retriable() or err.fatal() or err.txn_requires_abort())


def kafka_error(err: Any, role: str, what: str, servers: str, topic: str | None = None,
                partition: int | None = None) -> HubError:
    """The hub error for ``err`` (a ``KafkaError``): one line naming the brokers (and the
    topic, partition when known), transient or terminal.  ``role``: ``kafka source`` /
    ``kafka sink``; ``what``: the operation (``consuming``, ``committing checkpoint 3``)."""
    auth, no_topic, _, _ = _table()
    code = err.code()
    where = "" if not topic else f" (topic {topic}" + (
        f"[{partition}])" if partition is not None else ")")
    line = f"{role}: {what} at {servers}{where}: {err.name()}: {err.str()}"
    if code in auth:
        line += " (check the credentials in properties: security.protocol, sasl.*, ssl.*, " \
                "and the principal's ACLs)"
    elif code in no_topic:
        line += " (the topic does not exist and the broker does not create it: create it)"
    return (TransientError if is_transient(err) else TerminalError)(line)


def translate(exc: BaseException, role: str, what: str, servers: str,
              topic: str | None = None) -> BaseException:
    """The hub error for an exception out of the client: a ``KafkaException`` carrying a
    ``KafkaError`` as translated by :func:`kafka_error`; a hub error as it is; anything else
    (a bug) unchanged, for the runtime to report as an internal error."""
    if isinstance(exc, HubError):
        return exc
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return kafka_error(exc.args[0], role, what, servers, topic)
    return exc


@contextmanager
def kafka_errors(role: str, what: str, servers: str, topic: str | None = None
                 ) -> Iterator[None]:
    """Around client calls: a ``KafkaException`` leaves as a transient or terminal
    :class:`HubError` (:func:`translate`), with the original as its cause."""
    try:
        yield
    except HubError:
        raise
    except Exception as exc:
        translated = translate(exc, role, what, servers, topic)
        if translated is exc:
            raise
        raise translated from exc
