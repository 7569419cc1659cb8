"""Writes the batches of one subtask as Kafka records."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from formats.message import MessageEncoder
from runtime.batch import ChangeBatch
from runtime.errors import TerminalError, TransientError
from runtime.sink import Committable, SinkWriter, WriterContext
from runtime.wal import WriteAheadLog
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.transactions import (LIVE, LIVE_LOCK, TIMEOUT_S, Prepared, connect,
                                      group_metadata, marker_group, new_producer, produce_all,
                                      records_batch, transactional_id)

log = logging.getLogger(__name__)

#: How long a writer waits for the commit of its previous transaction before giving it up.
_AWAIT_COMMIT_S = 10.0


def wal_root(state_dir: str, subtask: int) -> str:
    return os.path.join(state_dir, "kafka-wal", str(subtask))


class KafkaWriter(SinkWriter):
    """Encodes each batch (values and keys in one vectorised call each, as Arrow arrays) and
    hands its records to the producer right away; what the barrier does depends on
    ``delivery``:

    * ``exactly-once``: write the records of the transaction (the encoded arrays, kept since
      :meth:`write`) to a WAL segment while the client still sends, flush, commit the marker
      into the transaction and hand the prepared transaction to the committer; the next
      transaction begins with the first record after the committer is done with it (see
      :mod:`sinks.kafka.transactions`).
    * ``at-least-once``: flush and fail on any delivery error.  ``none``: nothing.
    """

    def __init__(self, config: KafkaSinkConfig, context: WriterContext):
        self.config = config
        self.context = context
        self.mode = config.delivery
        self.prefix = config.transactional_id_prefix or f"hub-{context.pipeline}"
        self.encode_values = _arrow_values(config.value_format.encoder())
        self.encode_keys = _arrow_keys(config.key_message_format.encoder())
        self.errors: list[str] = []
        self.conf = {**config.producer_config(), "on_delivery": self._on_delivery}
        self.topics: dict[str, str] = {}
        self.wal = WriteAheadLog(wal_root(context.state_dir, context.subtask))
        self.pending: list[ChangeBatch] = []  # records of the open transaction, for the WAL
        self.marker_topic: str | None = None
        self.marker_partition = 0
        self.marker_partitions: dict[str, int] = {}
        self.txn_started: float | None = None
        self.slot = 0
        self.prepared: Prepared | None = None
        if self.mode == "exactly-once":
            self.group = marker_group(self.prefix, context.subtask)
            self.marker_consumer, self.group_meta = group_metadata(self.conf, self.group)
            # initialising the id aborts a transaction a crashed run left open
            self.producers = [self._new_producer(0)]
        else:
            from confluent_kafka import Producer

            self.producers = [Producer(self.conf)]
            connect(self.producers[0])

    def _new_producer(self, slot: int) -> Any:
        tid = transactional_id(self.prefix, self.context.subtask, slot)
        return new_producer(self.conf, tid, self.config.transaction_timeout)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and len(self.errors) < 10:
            self.errors.append(f"{msg.topic()}: {err.str()}")

    @property
    def producer(self) -> Any:
        return self.producers[self.slot]

    # -- writing ------------------------------------------------------------------------------
    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        topic = self.topics.get(batch.table)
        if topic is None:
            topic = self.topics[batch.table] = self.config.topic_of(batch.table)
        values = self.encode_values(batch, topic)
        keys = self.encode_keys(batch, topic)
        ts: Any = None
        if self.config.tombstones and "d" in batch.ops:
            keys, values, ts = _with_tombstones(batch.ops, keys, values, batch.ts_ms_array())
        if self.mode == "exactly-once":
            self._in_transaction(topic)
            self.pending.append(records_batch(
                topic, keys, values, batch.ts_ms_array() if ts is None else ts))
        produce_all(self.producer, topic, None if keys is None else _pylist(keys),
                    _pylist(values), batch.ts_ms_list() if ts is None else ts.to_pylist())
        if self.errors:
            self._fail_delivery()

    def _in_transaction(self, topic: str) -> None:
        now = time.monotonic()
        if self.txn_started is None:
            self._await_commit()
            self.producer.begin_transaction()
            self.txn_started = now
            self.marker_topic = topic
            self.marker_partition = self._marker_partition(topic)
        elif now - self.txn_started > 0.9 * self.config.transaction_timeout:
            raise TerminalError(
                f"kafka sink: a transaction has been open for {now - self.txn_started:.0f}s, "
                f"close to sink.transaction-timeout = {self.config.transaction_timeout:.0f}s: "
                "make transaction-timeout longer than checkpoint.interval plus the time a "
                "checkpoint takes (or checkpoint more often)")

    def _marker_partition(self, topic: str) -> int:
        """Each subtask's marker on a partition of its own where the topic has enough (the
        groups differ anyway; this keeps their offset commits apart on brokers too).  Looked
        up once per topic: partitions are only ever added, so it stays valid."""
        part = self.marker_partitions.get(topic)
        if part is None:
            meta = self.producer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
            n = len(meta.partitions) if meta is not None and meta.partitions else 1
            part = self.marker_partitions[topic] = self.context.subtask % n
        return part

    def _fail_delivery(self) -> None:
        raise TransientError(f"kafka sink: delivery failed: {'; '.join(self.errors[:3])}")

    def _flush(self) -> None:
        left = self.producer.flush(TIMEOUT_S)
        if left:
            raise TransientError(f"kafka sink: {left} records not delivered within "
                                 f"{TIMEOUT_S:.0f}s")
        if self.errors:
            self._fail_delivery()

    # -- checkpoints --------------------------------------------------------------------------
    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        if self.mode == "none":
            self.producer.poll(0)
            return []
        if self.mode == "at-least-once":
            self._flush()
            return []
        if self.txn_started is None:
            return []
        self._in_transaction(self.marker_topic or "")  # checks the transaction's age
        # the segment first: writing it overlaps with the client still sending the records
        name = f"{self.context.attempt}-{self.context.subtask}-{checkpoint_id}"
        segment = self.wal.write_segment(name, self.pending)
        self.pending = []
        self._flush()
        from confluent_kafka import KafkaException, TopicPartition

        try:
            self.producer.send_offsets_to_transaction(
                [TopicPartition(self.marker_topic, self.marker_partition, checkpoint_id)],
                self.group_meta,
                TIMEOUT_S)
        except KafkaException as exc:
            raise TransientError(f"kafka sink: adding the commit marker failed: {exc}") from exc
        key = f"{self.context.attempt}:{self.context.subtask}:{checkpoint_id}"
        prepared = Prepared(self.producer)
        with LIVE_LOCK:
            LIVE[key] = prepared
        self.prepared = prepared
        committable = {"key": key, "checkpoint": checkpoint_id, "subtask": self.context.subtask,
                       "slot": self.slot, "prefix": self.prefix, "marker_topic": self.marker_topic,
                       "marker_partition": self.marker_partition,
                       "segment": segment["segment"], "records": segment["rows"]}
        self.txn_started = None
        self.marker_topic = None
        return [committable]

    def _await_commit(self) -> None:
        """Wait until the committer is done with the prepared transaction (it commits right
        after its checkpoint is stored): one transactional id per subtask, one transaction
        at a time.  When the checkpoint does not complete in time (it was aborted), give the
        producer up: re-initialising its id aborts that transaction, and the committer
        re-sends its records from the WAL when a later checkpoint completes."""
        prev = self.prepared
        if prev is None:
            return
        deadline = time.monotonic() + _AWAIT_COMMIT_S
        while True:
            with prev.lock:
                if prev.done and not prev.broken:
                    self.prepared = None
                    return
                if prev.broken or time.monotonic() > deadline:
                    prev.abandoned = True
                    break
            time.sleep(0.001)
        log.info("kafka sink: subtask %d: the previous transaction is not committed yet: "
                 "replacing its producer", self.context.subtask)
        self.producers[self.slot] = self._new_producer(self.slot)
        self.prepared = None

    def close(self) -> None:
        for p in self.producers:
            try:
                p.flush(0 if self.mode == "exactly-once" else 5)
            except Exception:  # noqa: BLE001 - closing: nothing more to do for it
                log.debug("kafka sink: flush at close failed", exc_info=True)
        if self.mode == "exactly-once":
            self.marker_consumer.close()


def _arrow_values(encoder: MessageEncoder) -> Callable[[ChangeBatch, str], pa.Array]:
    """The encoder's values as one Arrow array per batch (nulls: no value): its own
    ``encode_arrow`` where it has one (the JSON encoder), else its list as an array."""
    direct = getattr(encoder, "encode_arrow", None)
    if direct is not None:
        return direct  # type: ignore[no-any-return]
    return lambda batch, topic: pa.array(encoder.encode(batch, topic), pa.binary())


def _arrow_keys(encoder: MessageEncoder) -> Callable[[ChangeBatch, str], pa.Array | None]:
    """Like :func:`_arrow_values` for keys; None for a batch without keys."""
    direct = getattr(encoder, "encode_keys_arrow", None)
    if direct is not None:
        return direct  # type: ignore[no-any-return]

    def keys(batch: ChangeBatch, topic: str) -> pa.Array | None:
        out = encoder.encode_keys(batch, topic)
        return None if out.count(None) == len(out) else pa.array(out, pa.binary())

    return keys


def _pylist(arr: pa.Array) -> list[bytes | None]:
    # zero-copy cast of strings to binary, then bytes objects made in one C loop
    return arr.cast(pa.binary()).to_pylist()


def _with_tombstones(ops: str, keys: pa.Array | None, values: pa.Array, ts: pa.Array
                     ) -> tuple[pa.Array | None, pa.Array, pa.Array]:
    """Each delete with a key followed by a tombstone: its key without a value."""
    if keys is None:
        return keys, values, ts
    dele = (np.frombuffer(ops.encode("ascii"), np.uint8) == ord("d")) & \
        keys.is_valid().to_numpy(zero_copy_only=False)
    take = np.repeat(np.arange(len(ops)), 1 + dele)
    tomb = np.zeros(len(take), bool)
    tomb[np.flatnonzero(dele) + np.arange(1, int(dele.sum()) + 1)] = True
    values = pc.if_else(pa.array(tomb), pa.scalar(None, values.type), values.take(take))
    return keys.take(take), values, ts.take(take)
