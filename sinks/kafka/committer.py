"""Commits the prepared transactions of the Kafka sink (see :mod:`sinks.kafka.transactions`)."""
from __future__ import annotations

import logging
import os
from typing import Any

from runtime.errors import TransientError
from runtime.sink import Committable, CommitContext, Committer
from runtime.wal import WriteAheadLog
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.transactions import (LIVE, LIVE_LOCK, TIMEOUT_S, committed_checkpoint,
                                      group_metadata, marker_group, new_producer, produce_all,
                                      transactional_id)

log = logging.getLogger(__name__)


class KafkaCommitter(Committer):
    """For each committable, in checkpoint order per subtask:

    1. the live producer of this process, when the writer handed it over: commit it;
    2. else the marker: the transaction committed if the marker group's offset is at least the
       checkpoint id; if not, re-send the WAL segment in a new transaction with the marker.

    Idempotent: a committed checkpoint is a no-op (its marker says so).  On recovery the
    re-sending producer takes the transactional id of the crashed transaction, which first
    completes or aborts whatever that transaction left in flight, so the marker read after it
    is final.
    """

    def __init__(self, config: KafkaSinkConfig):
        self.config = config
        self.conf = config.producer_config()
        self._consumers: dict[str, Any] = {}

    def commit(self, committables: list[Committable], context: CommitContext
               ) -> list[Committable]:
        for c in _ordered(committables):
            self._commit_one(c, recovering=False)
        return []

    def recover(self, committables: list[Committable], context: CommitContext
                ) -> list[Committable]:
        for c in _ordered(committables):
            self._commit_one(c, recovering=True)
        if context.state_dir:
            # every restored transaction is committed and its segment deleted: what is left
            # (checkpoints that never completed, subtasks of an earlier parallelism) is garbage
            WriteAheadLog(os.path.join(context.state_dir, "kafka-wal")).discard_except([])
        return []

    def _commit_one(self, c: Committable, recovering: bool) -> None:
        from confluent_kafka import KafkaException

        with LIVE_LOCK:
            prepared = LIVE.pop(c["key"], None)
        if prepared is not None:
            with prepared.lock:
                if not prepared.abandoned:
                    try:
                        prepared.producer.commit_transaction(TIMEOUT_S)
                        prepared.done = True
                        WriteAheadLog.delete_segment(c["segment"])
                        return
                    except KafkaException as exc:
                        prepared.broken = prepared.done = True
                        log.warning("kafka sink: committing the transaction of checkpoint %d "
                                    "(subtask %d) failed: %s; checking its marker",
                                    c["checkpoint"], c["subtask"], exc)
        self._commit_by_marker(c, recovering)

    def _commit_by_marker(self, c: Committable, recovering: bool) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        subtask, cid = c["subtask"], c["checkpoint"]
        group = marker_group(c["prefix"], subtask)
        # In recovery, take over the crashed transaction's id: that resolves it first.
        # In this process that id belongs to a live writer: use an id of the committer's own.
        slot = c["slot"] if recovering else "resend"
        producer = new_producer(self.conf, transactional_id(c["prefix"], subtask, slot),
                                self.config.transaction_timeout)
        try:
            consumer, meta = self._marker(group)
            if committed_checkpoint(consumer, c["marker_topic"], c["marker_partition"]) >= cid:
                log.info("kafka sink: checkpoint %d (subtask %d) was committed already",
                         cid, subtask)
                WriteAheadLog.delete_segment(c["segment"])
                return
            segment = c["segment"]
            if segment is None or not os.path.isdir(segment):
                # A segment goes only after its transaction committed (or was re-sent):
                # gone means committed, whatever a broker's offsets say.
                log.info("kafka sink: checkpoint %d (subtask %d) was committed already (its "
                         "write-ahead log segment is gone)", cid, subtask)
                return
            batches = WriteAheadLog.read_segment(segment)
            log.info("kafka sink: re-sending %d records of checkpoint %d (subtask %d) from the "
                     "write-ahead log", c["records"], cid, subtask)
            try:
                producer.begin_transaction()
                for b in batches:
                    cols = b.arrow()
                    topics = cols.column(0).to_pylist()
                    keys = cols.column(1).to_pylist()
                    values = cols.column(2).to_pylist()
                    ts = b.ts_ms_list()
                    # runs of one topic (a segment holds one file per table run)
                    start = 0
                    for i in range(1, len(topics) + 1):
                        if i == len(topics) or topics[i] != topics[start]:
                            produce_all(producer, topics[start], keys[start:i],
                                        values[start:i], ts[start:i])
                            start = i
                producer.send_offsets_to_transaction(
                    [TopicPartition(c["marker_topic"], c["marker_partition"], cid)], meta,
                    TIMEOUT_S)
                producer.commit_transaction(TIMEOUT_S)
            except KafkaException as exc:
                raise TransientError(f"kafka sink: re-sending checkpoint {cid} failed: "
                                     f"{exc}") from exc
            WriteAheadLog.delete_segment(segment)
        finally:
            producer.flush(0)

    def _marker(self, group: str) -> tuple[Any, Any]:
        hit = self._consumers.get(group)
        if hit is None:
            hit = self._consumers[group] = group_metadata(self.conf, group)
        return hit

    def close(self) -> None:
        for consumer, _ in self._consumers.values():
            consumer.close()
        self._consumers.clear()


def _ordered(committables: list[Committable]) -> list[Committable]:
    return sorted(committables, key=lambda c: (c["subtask"], c["checkpoint"]))
