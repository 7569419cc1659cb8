"""Transactions of the Kafka sink: ids, the commit marker, the write-ahead log of records.

Each writer subtask writes through one transactional producer (id ``<prefix>-<subtask>-0``):
its transaction of a checkpoint is flushed at the barrier (prepared) and committed by the
writer itself when the runtime says the checkpoint is stored
(``SinkWriter.notify_checkpoint_stored``): librdkafka can't resume another producer's
transaction, so no other process could.  Every transaction also commits the consumer-group
offset ``checkpoint id`` of group ``<prefix>-<subtask>`` (the *marker*), atomically with its
records, so that the marker tells whether a checkpoint's transaction committed.  The
committer confirms each commit by that marker.

The records of each prepared transaction are also in a write-ahead log segment in checkpoint
storage: the Arrow arrays of topic, key and value exactly as sent (the encoders' own buffers,
no copy until the segment is written), deleted once the transaction committed.  After a
crash the writers are gone with their transactions: recovery fences their transactional ids
(aborting what they left open), looks at each marker and re-sends a segment in a new
transaction only if its checkpoint's transaction did not commit.

Per-key order (read_committed consumers read in log order, and a record sent again lands
after everything already in the log): a writer begins no transaction before the previous one
committed, and recovery re-sends in checkpoint order.  When the checkpoint is not stored in
time (it was aborted; its committables complete with a later checkpoint), the writer *takes
the prepared transaction over*: it aborts it, sends its records again first thing in its next
transaction and commits that transaction's marker for both.  The committer confirms the
taken-over committable once its successor committed ("not yet" until then).  Every segment
holds only the records its own checkpoint added, so recovery, re-sending by marker in
checkpoint order, sends each record once.

Crash points of the take-over (:mod:`runtime.faults`; N is the checkpoint taken over):
``kafka-resent:N`` the writer handed N's records (with those N took over) to the client again
in its next transaction; ``kafka-prepared-taken-over:N`` that transaction is prepared (flushed,
markers added), not yet stored; ``kafka-commit-taken-over:N`` and
``kafka-committed-taken-over:N`` just before and after the writer commits it;
``kafka-resent-by-marker:N`` recovery re-sent N from the write-ahead log and committed it,
its segment not yet deleted.
"""
from __future__ import annotations

import logging
import threading
import time
from itertools import repeat
from typing import Any

import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError, TransientError
from runtime.schema import Column, TableSchema
from runtime.types import T
from runtime.wal import WriteAheadLog
from formats.clients.kafka import kafka_error, kafka_errors, translate

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
ROLE = "kafka sink"


def servers_of(conf: dict[str, Any]) -> str:
    """The brokers of a client configuration, for error lines."""
    return str(conf.get("bootstrap.servers", "the brokers"))

#: The schema of write-ahead log batches: the records exactly as sent.
RECORDS = TableSchema("kafka.records", (Column("topic", T("STRING"), False),
                                        Column("key", T("BYTES")), Column("value", T("BYTES"))))


def transactional_id(prefix: str, subtask: int, slot: int | str) -> str:
    return f"{prefix}-{subtask}-{slot}"


def marker_group(prefix: str, subtask: int) -> str:
    return f"{prefix}-{subtask}"


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


def produce_segment(producer: Any, segment: str) -> int:
    """Send the records of write-ahead log ``segment`` again (in the open transaction), in
    their order, read one record batch at a time (memory: about one batch, whatever the size
    of the segment).  Returns how many."""
    n = 0
    for b in WriteAheadLog.iter_segment(segment):
        cols = b.arrow()
        topics = cols.column(0).to_pylist()
        keys = cols.column(1).to_pylist()
        values = cols.column(2).to_pylist()
        ts = b.ts_ms_list()
        # runs of one topic (a segment holds one file per table run)
        start = 0
        for i in range(1, len(topics) + 1):
            if i == len(topics) or topics[i] != topics[start]:
                produce_all(producer, topics[start], keys[start:i], values[start:i],
                            ts[start:i])
                start = i
        n += len(b)
    return n


def new_producer(conf: dict[str, Any], tid: str, timeout_s: float) -> Any:
    """A transactional producer with its transactions initialised (which aborts a transaction
    a previous holder of ``tid`` left open, or waits for one being committed)."""
    from confluent_kafka import KafkaError, KafkaException, Producer

    with kafka_errors(ROLE, f"creating the producer {tid}", servers_of(conf)):
        p = Producer({**conf, "transactional.id": tid,
                      "transaction.timeout.ms": int(timeout_s * 1000)})
    connect(p, servers_of(conf))  # else the coordinator lookup may find no connection up
    try:                          # and retry in 500 ms
        p.init_transactions(TIMEOUT_S)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() == KafkaError.INVALID_TRANSACTION_TIMEOUT:
            raise ConfigError(f"{timeout_s:.0f}s is above the broker's "
                              f"transaction.max.timeout.ms: lower it or raise the broker's "
                              f"limit ({err.str()})", key="sink.transaction-timeout") from None
        raise translate(exc, ROLE, f"initialising transactions of {tid}",
                        servers_of(conf)) from exc
    return p


def connect(producer: Any, servers: str) -> None:
    """Connect a producer to the brokers before its first record or ``init_transactions``,
    best effort.  librdkafka asks for a producer id (or looks up the transaction
    coordinator) when a metadata response arrives, and if no broker connection is up by then,
    only 500 ms later, holding back every record meanwhile.  The first metadata request
    opens the connections to the brokers it names; the second one, a moment later, usually
    finds them up."""
    with kafka_errors(ROLE, "connecting", servers):
        producer.list_topics(timeout=TIMEOUT_S)
        time.sleep(0.01)
        producer.list_topics(timeout=TIMEOUT_S)


#: How long :func:`send_offsets` waits for the marker to be added (the group coordinator
#: answers in milliseconds; seconds while it loads after a restart), and how much longer for
#: the client to return.
SEND_OFFSETS_TIMEOUT_S = 10.0
_GRACE_S = 2.0


def send_offsets(producer: Any, offsets: list, group_meta: Any, what: str, servers: str
                 ) -> None:
    """``producer.send_offsets_to_transaction(offsets, group_meta, ...)``, bounded.

    librdkafka (2.16 at least, confluentinc/librdkafka#5456 and #5511) can block in it past
    its timeout, for good: when the group coordinator restarted, the request for it may never
    be sent again.  So the call runs in a thread of its own, and one still blocked
    :data:`SEND_OFFSETS_TIMEOUT_S` plus a grace later is a :class:`TransientError`: the runtime restarts the
    pipeline from its latest checkpoint with new producers, whose initialisation aborts the
    transaction (the blocked thread and its producer are left behind, logged)."""
    done = threading.Event()
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            producer.send_offsets_to_transaction(offsets, group_meta, SEND_OFFSETS_TIMEOUT_S)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=call, name="kafka-send-offsets", daemon=True).start()
    limit = SEND_OFFSETS_TIMEOUT_S + _GRACE_S
    if not done.wait(limit):
        log.warning("kafka sink: %s: the client has not returned after %.0fs (a known "
                    "librdkafka hang after a group coordinator restart); its producer is "
                    "left behind", what, limit)
        raise TransientError(f"kafka sink: {what} at {servers}: no answer within "
                             f"{limit:.0f}s (the group coordinator restarted?)")
    if outcome[0] is not None:
        raise outcome[0]


def group_metadata(bootstrap: dict[str, Any], group: str) -> tuple[Any, Any]:
    """A consumer of the marker group (never subscribed) and its group metadata."""
    from confluent_kafka import Consumer

    with kafka_errors(ROLE, f"creating a consumer of marker group {group!r}",
                      servers_of(bootstrap)):
        c = Consumer(_consumer_conf(bootstrap, group))
        return c, c.consumer_group_metadata()


def _consumer_conf(producer_conf: dict[str, Any], group: str) -> dict[str, Any]:
    conf = {k: v for k, v in producer_conf.items()
            if k.startswith(("security.", "sasl.", "ssl.", "bootstrap.")) or k == "logger"}
    # read_committed: committed() asks for stable offsets (no transaction in flight), which
    # the client asks again for until the transaction ended: soon after, not 100 ms to 1 s
    # (the committer confirms each writer's commit this way, once per checkpoint)
    return {**conf, "group.id": group, "enable.auto.commit": False,
            "isolation.level": "read_committed", "retry.backoff.ms": 10,
            "retry.backoff.max.ms": 100}


def committed_checkpoint(consumer: Any, topic: str, partition: int = 0,
                         servers: str = "the brokers") -> int:
    """The checkpoint id the marker group last committed for (-1: none)."""
    from confluent_kafka import TopicPartition

    with kafka_errors(ROLE, "reading the commit marker", servers, topic):
        tp = consumer.committed([TopicPartition(topic, partition)], timeout=TIMEOUT_S)[0]
    if tp.error is not None:
        raise kafka_error(tp.error, ROLE, "reading the commit marker", servers, topic,
                          partition)
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
