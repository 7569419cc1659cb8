"""Transactions of the Kafka sink: ids, the commit marker, the write-ahead log of records and
the hand-over of prepared transactions from writers to the committer.

Each writer subtask writes through one transactional producer (id ``<prefix>-<subtask>-0``):
its transaction of a checkpoint is flushed at the barrier, handed to the committer, and the
next transaction begins once the committer committed it (right after the checkpoint is
stored, so the writer rarely waits).  Every transaction also commits the consumer-group offset
``checkpoint id`` of group ``<prefix>-<subtask>`` (the *marker*), atomically with its records,
so that the marker tells whether a checkpoint's transaction committed.

librdkafka can't resume another producer's transaction, so the records of each prepared
transaction are also in a write-ahead log segment in checkpoint storage: the Arrow arrays of
topic, key and value exactly as sent (the encoders' own buffers, no copy until the segment is
written).  In the process that prepared it, the committer commits the live producer
(:data:`LIVE`); after a crash, or when that producer is gone, it looks at the marker and
re-sends the segment in a new transaction only if the checkpoint's transaction did not commit.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError, TerminalError, TransientError
from runtime.schema import Column, TableSchema
from runtime.types import T

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0

#: The schema of write-ahead log batches: the records exactly as sent.
RECORDS = TableSchema("kafka.records", (Column("topic", T("STRING"), False),
                                        Column("key", T("BYTES")), Column("value", T("BYTES"))))


def transactional_id(prefix: str, subtask: int, slot: int | str) -> str:
    return f"{prefix}-{subtask}-{slot}"


def marker_group(prefix: str, subtask: int) -> str:
    return f"{prefix}-{subtask}"


@dataclass
class Prepared:
    """A prepared transaction handed from a writer to the committer (same process only)."""

    producer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    #: the writer gave the producer up (its checkpoint took too long): use the marker + WAL
    abandoned: bool = False
    #: the commit failed: the producer must not be used again
    broken: bool = False


#: Prepared transactions by committable key (``attempt:subtask:checkpoint``).
LIVE: dict[str, Prepared] = {}
LIVE_LOCK = threading.Lock()


def records_batch(topic: str, keys: pa.Array | None, values: pa.Array, ts: pa.Array
                  ) -> ChangeBatch:
    """Records as a write-ahead log batch: the arrays as they are (string arrays are cast to
    binary without a copy)."""
    n = len(values)
    rb = pa.RecordBatch.from_arrays(
        [pa.repeat(pa.scalar(topic, pa.string()), n),
         pa.nulls(n, pa.binary()) if keys is None else keys.cast(pa.binary()),
         values.cast(pa.binary())], schema=RECORDS.arrow_schema)
    return ChangeBatch(RECORDS, "c" * n, arrow=rb, ts_ms=ts)


def new_producer(conf: dict[str, Any], tid: str, timeout_s: float) -> Any:
    """A transactional producer with its transactions initialised (which aborts a transaction
    a previous holder of ``tid`` left open, or waits for one being committed)."""
    from confluent_kafka import KafkaError, KafkaException, Producer

    p = Producer({**conf, "transactional.id": tid,
                  "transaction.timeout.ms": int(timeout_s * 1000)})
    connect(p)  # else the coordinator lookup may find no connection up and retry in 500 ms
    try:
        p.init_transactions(TIMEOUT_S)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() == KafkaError.INVALID_TRANSACTION_TIMEOUT:
            raise ConfigError(f"{timeout_s:.0f}s is above the broker's "
                              f"transaction.max.timeout.ms: lower it or raise the broker's "
                              f"limit ({err.str()})", key="sink.transaction-timeout") from None
        if err.retriable():
            raise TransientError(f"kafka sink: initialising transactions of {tid} failed: "
                                 f"{err.str()}") from exc
        raise TerminalError(f"kafka sink: initialising transactions of {tid} failed: "
                            f"{err.str()}") from exc
    return p


def connect(producer: Any) -> None:
    """Connect a producer to the brokers before its first record or ``init_transactions``,
    best effort.  librdkafka asks for a producer id (or looks up the transaction
    coordinator) when a metadata response arrives, and if no broker connection is up by then,
    only 500 ms later, holding back every record meanwhile.  The first metadata request
    opens the connections to the brokers it names; the second one, a moment later, usually
    finds them up."""
    from confluent_kafka import KafkaException

    try:
        producer.list_topics(timeout=TIMEOUT_S)
        time.sleep(0.01)
        producer.list_topics(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise TransientError(f"kafka sink: no broker answers: {exc}") from exc


def group_metadata(bootstrap: dict[str, Any], group: str) -> tuple[Any, Any]:
    """A consumer of the marker group (never subscribed) and its group metadata."""
    from confluent_kafka import Consumer

    c = Consumer(_consumer_conf(bootstrap, group))
    return c, c.consumer_group_metadata()


def _consumer_conf(producer_conf: dict[str, Any], group: str) -> dict[str, Any]:
    conf = {k: v for k, v in producer_conf.items()
            if k.startswith(("security.", "sasl.", "ssl.", "bootstrap."))}
    # read_committed: committed() asks for stable offsets (no transaction in flight)
    return {**conf, "group.id": group, "enable.auto.commit": False,
            "isolation.level": "read_committed"}


def committed_checkpoint(consumer: Any, topic: str, partition: int = 0) -> int:
    """The checkpoint id the marker group last committed for (-1: none)."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        tp = consumer.committed([TopicPartition(topic, partition)], timeout=TIMEOUT_S)[0]
    except KafkaException as exc:
        raise TransientError(f"kafka sink: reading the commit marker failed: {exc}") from exc
    if tp.error is not None:
        raise TransientError(f"kafka sink: reading the commit marker failed: {tp.error}")
    return tp.offset if tp.offset >= 0 else -1


def produce_all(producer: Any, topic: str, keys: list | None, values: list, ts: list[int]
                ) -> None:
    """Hand records to the client (blocks while its queue is full).  ``keys`` None: no keys.

    Positional arguments (partition -1 = the partitioner, on_delivery None = the
    producer's): the C call parses them much faster than a ``timestamp=`` keyword."""
    produce, poll = producer.produce, producer.poll
    for k, v, t in zip(keys if keys is not None else repeat(None, len(values)), values, ts):
        try:
            produce(topic, v, k, -1, None, None, t)
        except BufferError:
            while True:
                poll(0.05)  # the queue is full: librdkafka sends while we wait
                try:
                    produce(topic, v, k, -1, None, None, t)
                    break
                except BufferError:
                    continue
    poll(0)
