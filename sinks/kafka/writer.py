"""Writes the batches of one subtask as Kafka records."""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError, TransientError
from runtime.faults import crash_point
from runtime.sink import Committable, SinkWriter, WriterContext
from runtime.wal import SegmentWriter, WriteAheadLog
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.transactions import (ROLE, TIMEOUT_S, connect, group_metadata, marker_group,
                                      new_producer, produce_all, produce_segment, records_batch,
                                      send_offsets, transactional_id)
from formats.clients.kafka import is_transient, kafka_error, kafka_errors

log = logging.getLogger(__name__)

#: How long a writer waits at most for its prepared transaction's checkpoint to be stored
#: before taking the transaction over (the checkpoint was aborted, or is very slow); never
#: longer than ``checkpoint.timeout``, after which that checkpoint is aborted for sure.
_AWAIT_STORED_S = 10.0


#: The last part of every writer's transactional id.
SLOT = 0


def wal_root(state_dir: str, subtask: int) -> str:
    return os.path.join(state_dir, "kafka-wal", str(subtask))


class KafkaWriter(SinkWriter):
    """Encodes each batch (values and keys in one vectorised call each, as Arrow arrays, in an
    encoder thread of its own) and hands its records to the producer during the next
    :meth:`write` (so encoding one batch overlaps with sending the one before) or at the
    barrier, whichever comes first; what the barrier does depends on ``delivery``:

    * ``exactly-once``: finish the WAL segment the encoder appended the transaction's records
      to (the encoded arrays, as they were made) while the client still sends, flush and add
      the marker to the transaction: it is prepared.  It commits when the runtime says its
      checkpoint is stored (:meth:`notify_checkpoint_stored`); the next transaction begins
      with the first record after that, or after taking the prepared one over (see
      :mod:`sinks.kafka.transactions`).
    * ``at-least-once``: flush and fail on any delivery error.  ``none``: nothing.
    """

    def __init__(self, config: KafkaSinkConfig, context: WriterContext):
        self.config = config
        self.context = context
        self.mode = config.delivery
        self.prefix = config.transactional_id_prefix or f"hub-{context.pipeline}"
        self.encode_values = config.value_format.encoder().encode_arrow
        self.encode_keys = config.key_message_format.encoder().encode_keys_arrow
        self.servers = config.bootstrap_servers
        #: delivery errors reported by the client: (topic, KafkaError)
        self.errors: list[tuple[str, Any]] = []
        self.encoder = ThreadPoolExecutor(1, f"kafka-encode-{context.subtask}")
        #: the batch written last: its topic and its encoding under way
        self.encoded: tuple[str, Future] | None = None
        self.conf = {**config.producer_config(), "on_delivery": self._on_delivery}
        self.topics: dict[str, str] = {}
        self.wal = WriteAheadLog(wal_root(context.state_dir, context.subtask))
        #: the open transaction's records, appended by the encoder thread as they are encoded
        #: (memory stays a batch, whatever the checkpoint interval), finished at the barrier
        self.segment: SegmentWriter | None = None
        self.marker_topic: str | None = None
        self.marker_partition = 0
        self.marker_partitions: dict[str, int] = {}
        self.txn_started: float | None = None
        #: the checkpoint of the prepared transaction (0: none), and of the one the open one
        #: took over
        self.prepared_checkpoint = 0
        self.taken_checkpoint = 0
        #: the checkpoint the prepared transaction took over (0: none), for its crash points
        self.prepared_took_over = 0
        #: WAL segments of the prepared transaction's records (with those it took over)
        self.prepared_segments: list[str] = []
        #: marker partitions of the prepared transaction (with those it took over)
        self.prepared_markers: list[tuple[str, int]] = []
        #: the same, taken over by the open transaction
        self.taken_segments: list[str] = []
        self.taken_markers: list[tuple[str, int]] = []
        if self.mode == "exactly-once":
            self.group = marker_group(self.prefix, context.subtask)
            self.marker_consumer, self.group_meta = group_metadata(self.conf, self.group)
            # initialising the id aborts a transaction a crashed run left open
            self.producer = new_producer(self.conf,
                                         transactional_id(self.prefix, context.subtask, SLOT),
                                         self.config.transaction_timeout)
        else:
            from confluent_kafka import Producer

            with kafka_errors(ROLE, "creating the producer", self.servers):
                self.producer = Producer(self.conf)
            connect(self.producer, self.servers)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and len(self.errors) < 10:
            self.errors.append((msg.topic(), err))

    # -- writing ------------------------------------------------------------------------------
    def write(self, batch: ChangeBatch) -> None:
        with kafka_errors(ROLE, "writing", self.servers):
            self._write(batch)

    def _write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        topic = self.topics.get(batch.table)
        if topic is None:
            topic = self.topics[batch.table] = self.config.topic_of(batch.table)
        if self.mode == "exactly-once":
            self._in_transaction(topic)
        # Encoding (Arrow kernels, without the GIL) of this batch runs in the encoder's
        # thread while this one hands the previous batch's records to the client.
        encoded = self.encoder.submit(self._encode, batch, topic)
        self._send_encoded()
        self.encoded = (topic, encoded)

    def _encode(self, batch: ChangeBatch, topic: str
                ) -> tuple[pa.Array | None, pa.Array, pa.Array]:
        """Keys, values and times of the records (exactly-once: appended to the WAL too)."""
        values = self.encode_values(batch, topic)
        keys = self.encode_keys(batch, topic)
        ts = batch.ts_ms_array()
        if self.config.tombstones and "d" in batch.ops:
            keys, values, ts = _with_tombstones(batch.ops, keys, values, ts)
        if self.mode == "exactly-once":
            # in this thread: encodes run one at a time, in order, and the barrier waits for
            # the last one before it finishes the segment
            if self.segment is None:
                self.segment = self.wal.open_segment()
            self.segment.append(records_batch(topic, keys, values, ts))
        return keys, values, ts

    def _send_encoded(self) -> None:
        """Hand the records of the batch written last to the client."""
        if self.encoded is None:
            return
        topic, future = self.encoded
        self.encoded = None
        keys, values, ts = future.result()
        with kafka_errors(ROLE, "producing", self.servers, topic):  # e.g. a record too large
            produce_all(self.producer, topic, None if keys is None else _pylist(keys),
                        _pylist(values), ts.to_pylist())
        if self.errors:
            self._fail_delivery()

    def _in_transaction(self, topic: str) -> None:
        now = time.monotonic()
        if self.txn_started is None:
            taken = self._await_stored()
            self.producer.begin_transaction()
            self.txn_started = now
            self.marker_topic = topic
            self.marker_partition = self._marker_partition(topic)
            if taken:
                self._resend(*taken)
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
        """Raise the first terminal delivery error (a topic that does not exist, a record
        too large, refused ACLs), else the first one (transient)."""
        topic, err = next(((t, e) for t, e in self.errors if not is_transient(e)),
                          self.errors[0])
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        error = kafka_error(err, ROLE, "delivering records", self.servers, topic)
        raise type(error)(f"{error}{more}")

    def _flush(self) -> None:
        left = self.producer.flush(TIMEOUT_S)
        if left:
            raise TransientError(f"kafka sink: {left} records not delivered within "
                                 f"{TIMEOUT_S:.0f}s")
        if self.errors:
            self._fail_delivery()

    # -- checkpoints --------------------------------------------------------------------------
    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        with kafka_errors(ROLE, f"preparing checkpoint {checkpoint_id}", self.servers):
            return self._prepare_commit(checkpoint_id)

    def _prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        self._send_encoded()
        if self.mode == "none":
            self.producer.poll(0)
            return []
        if self.mode == "at-least-once":
            self._flush()
            return []
        if self.txn_started is None:
            return []
        self._in_transaction(self.marker_topic or "")  # checks the transaction's age
        # the segment first: its fsync overlaps with the client still sending the records
        name = f"{self.context.attempt}-{self.context.subtask}-{checkpoint_id}"
        segment = self.segment.finish(name) if self.segment is not None else {"segment": None}
        self.segment = None
        self._flush()
        from confluent_kafka import TopicPartition

        markers = list(dict.fromkeys(
            [*self.taken_markers, (self.marker_topic or "", self.marker_partition)]))
        with kafka_errors(ROLE, f"adding the commit marker of checkpoint {checkpoint_id}",
                          self.servers, self.marker_topic):
            send_offsets(self.producer,
                         [TopicPartition(t, p, checkpoint_id) for t, p in markers],
                         self.group_meta, f"adding the commit marker of checkpoint "
                         f"{checkpoint_id}", self.servers)
        self.prepared_checkpoint = checkpoint_id
        self.prepared_segments = self.taken_segments + \
            ([segment["segment"]] if segment["segment"] else [])
        self.prepared_markers = markers
        self.prepared_took_over = self.taken_checkpoint
        if self.taken_checkpoint:
            crash_point("kafka-prepared-taken-over", self.taken_checkpoint)
            self.taken_checkpoint = 0
        self.taken_segments, self.taken_markers = [], []
        # "slot": the transactional id's last part, which recovery fences (always 0 now;
        # checkpoints of earlier versions may name others)
        committable = {"checkpoint": checkpoint_id, "subtask": self.context.subtask,
                       "slot": SLOT, "prefix": self.prefix, "marker_topic": self.marker_topic,
                       "marker_partition": self.marker_partition,
                       "segment": segment["segment"], "records": segment["rows"]}
        self.txn_started = None
        self.marker_topic = None
        return [committable]

    def notify_checkpoint_stored(self, checkpoint_id: int) -> None:
        """Commit the prepared transaction once its checkpoint is stored (only this producer
        can: librdkafka can't resume another's transaction).  The committer confirms it by its
        marker; a failure here fails the job, and recovery re-sends from the WAL by marker."""
        if self.prepared_checkpoint and self.prepared_checkpoint <= checkpoint_id:
            with kafka_errors(ROLE, f"committing the transaction of checkpoint "
                                    f"{self.prepared_checkpoint}", self.servers):
                self._commit_prepared()

    def _commit_prepared(self) -> None:
        took_over = self.prepared_took_over
        if took_over:
            crash_point("kafka-commit-taken-over", took_over)
        self.producer.commit_transaction(TIMEOUT_S)
        if took_over:
            crash_point("kafka-committed-taken-over", took_over)
        for seg in self.prepared_segments:  # gone means committed (see transactions)
            WriteAheadLog.delete_segment(seg)
        self.prepared_checkpoint = self.prepared_took_over = 0
        self.prepared_segments, self.prepared_markers = [], []

    def _await_stored(self) -> tuple[list[str], list[tuple[str, int]]] | None:
        """Before the next transaction begins (one transactional id per subtask, one
        transaction at a time): wait until the prepared transaction's checkpoint is stored,
        which commits it (:meth:`notify_checkpoint_stored`, delivered while this waits).
        When that does not come in time (its checkpoint was aborted), take it over: abort it,
        and the caller sends its records again (the returned segments) before any other;
        the marker partitions returned are committed with the next transaction's marker.
        The writer's own producer aborts it: a new producer initialising the id would too,
        but Apache Kafka answers its producer id request only once the abort's markers are
        written, which librdkafka asks again for half a second later, and a checkpoint
        waiting that long behind a take-over is aborted in turn under a short
        checkpoint.timeout."""
        if not self.prepared_checkpoint:
            return None
        wait_s = min(_AWAIT_STORED_S, self.context.checkpoint_timeout_s)
        deadline = time.monotonic() + wait_s
        while self.prepared_checkpoint:
            left = deadline - time.monotonic()
            if left <= 0 or not self.context.notifications.wait(left):
                break
        if not self.prepared_checkpoint:
            return None
        log.info("kafka sink: subtask %d: checkpoint %d is not stored after %.1fs (it was "
                 "aborted?): the records of its transaction go again into the next one",
                 self.context.subtask, self.prepared_checkpoint, wait_s)
        with kafka_errors(ROLE, f"aborting the transaction of checkpoint "
                                f"{self.prepared_checkpoint} taken over", self.servers):
            self.producer.abort_transaction(TIMEOUT_S)
        taken = self.prepared_segments, self.prepared_markers
        self.taken_checkpoint = self.prepared_checkpoint
        self.prepared_checkpoint = self.prepared_took_over = 0
        self.prepared_segments, self.prepared_markers = [], []
        return taken

    def _resend(self, segments: list[str], markers: list[tuple[str, int]]) -> None:
        n = sum(produce_segment(self.producer, seg) for seg in segments)
        log.info("kafka sink: subtask %d: %d records of the transaction taken over sent again",
                 self.context.subtask, n)
        self.taken_segments, self.taken_markers = segments, markers
        crash_point("kafka-resent", self.taken_checkpoint)
        if self.errors:
            self._fail_delivery()

    def close(self) -> None:
        if self.mode != "exactly-once" and self.encoded is not None:
            try:  # best effort, as the client's flush below
                self._send_encoded()
            except Exception:  # noqa: BLE001 - closing: nothing more to do for it
                log.debug("kafka sink: sending the last batch at close failed", exc_info=True)
        self.encoded = None  # exactly-once: never prepared, so never to be committed
        self.encoder.shutdown(wait=True)
        if self.segment is not None:
            self.segment.abort()  # records after the last barrier: never prepared
            self.segment = None
        # exactly-once: a prepared transaction left is aborted by the next holder of the id
        # (its checkpoint's commit, or the next run's recovery, re-sends it by marker)
        try:
            self.producer.flush(0 if self.mode == "exactly-once" else 5)
        except Exception:  # noqa: BLE001 - closing: nothing more to do for it
            log.debug("kafka sink: flush at close failed", exc_info=True)
        if self.mode == "exactly-once":
            self.marker_consumer.close()


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
