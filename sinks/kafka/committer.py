"""Commits the prepared transactions of the Kafka sink (see :mod:`sinks.kafka.transactions`)."""
from __future__ import annotations

import logging
import os
from typing import Any

from runtime.errors import HubError
from runtime.faults import crash_point
from runtime.sink import Committable, CommitContext, CommitOutcome, Committer, settle
from runtime.wal import WriteAheadLog
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.transactions import (ROLE, TIMEOUT_S, committed_checkpoint, group_metadata,
                                      marker_group, new_producer, produce_segment, send_offsets,
                                      transactional_id)
from formats.clients.kafka import kafka_errors

log = logging.getLogger(__name__)


class KafkaCommitter(Committer):
    """Confirms, or after a crash completes, the transactions of the Kafka sink's writers.

    * While the writers run (:meth:`commit`): each writer commits its own transaction when
      its checkpoint is stored (see :mod:`sinks.kafka.transactions`); the committer reads
      each subtask's marker once, which, read as a stable offset, waits until that
      subtask's prepared transaction committed or aborted.  A committable whose checkpoint
      the marker reached is done; one below it was taken over by the writer's next
      transaction (its checkpoint was aborted) and is "not yet": it commits with that one,
      offered again with the next checkpoint.
    * After a crash (:meth:`recover`), the writers are gone: fence every restored writer's
      transactional id (which completes or aborts what it left in flight), then per
      committable in checkpoint order, the marker: committed if the marker group's offset is
      at least the checkpoint id; if not, re-send the WAL segment in a new transaction with
      the marker.

    One outcome per committable (:meth:`commit_each`): a subtask whose marker can't be read
    is retried alone (with its later committables), the other subtasks' are confirmed
    meanwhile.  Idempotent: a committed checkpoint is a no-op (its marker says so).
    """

    def __init__(self, config: KafkaSinkConfig):
        self.config = config
        self.conf = config.producer_config()
        self._consumers: dict[str, Any] = {}
        #: producers of the restored writers' ids, initialised by the fencing of a recovery
        self._fenced: dict[str, Any] = {}

    def commit(self, committables: list[Committable], context: CommitContext
               ) -> list[Committable]:
        return settle(self.commit_each(committables, context))

    def commit_each(self, committables: list[Committable], context: CommitContext
                    ) -> list[CommitOutcome]:
        outcomes: list[CommitOutcome] = []
        for subtask, mine in _by_subtask(committables).items():
            last = mine[-1]
            try:
                with kafka_errors(ROLE, f"confirming checkpoint {last['checkpoint']} (subtask "
                                        f"{subtask})", self.config.bootstrap_servers):
                    marker = self._marker_of(last)
            except HubError as exc:  # this subtask's: the others' go on
                outcomes.extend(CommitOutcome.failure(c, exc) for c in mine)
                continue
            for c in mine:
                if marker >= c["checkpoint"] or _gone(c):
                    if c["segment"]:  # the writer deletes it after its commit, or would
                        WriteAheadLog.delete_segment(c["segment"])
                    outcomes.append(CommitOutcome.done(c))
                else:  # taken over by the writer's open transaction
                    outcomes.append(CommitOutcome.not_yet(c))
        return outcomes

    def recover(self, committables: list[Committable], context: CommitContext
                ) -> list[Committable]:
        with kafka_errors(ROLE, f"recovering checkpoint {context.checkpoint_id}",
                          self.config.bootstrap_servers):
            self._recover(committables)
        if context.state_dir:
            # every restored transaction is committed and its segment deleted: what is left
            # (checkpoints that never completed, subtasks of an earlier parallelism) is garbage
            WriteAheadLog(os.path.join(context.state_dir, "kafka-wal")).discard_except([])
        return []

    def _recover(self, committables: list[Committable]) -> None:
        self._fence(committables)
        try:
            for subtask, mine in _by_subtask(committables).items():
                for c in mine:  # in checkpoint order: a re-send lands after the earlier
                    with kafka_errors(ROLE, f"recovering checkpoint {c['checkpoint']} "
                                            f"(subtask {subtask})",
                                      self.config.bootstrap_servers):
                        self._commit_by_marker(c)
        finally:
            for producer in self._fenced.values():  # those no re-send needed
                producer.flush(0)
            self._fenced.clear()

    def _fence(self, committables: list[Committable]) -> None:
        """Complete or abort what every writer of the restored checkpoint left in flight
        before any marker is read: the marker is read as a stable offset, which Apache Kafka
        gives only once no transaction with offsets of the group is open (else only after that
        transaction's timeout), and each subtask's records are on every subtask's marker
        partition."""
        for prefix, subtask, slot in dict.fromkeys(
                (c["prefix"], c["subtask"], c["slot"]) for c in committables):
            tid = transactional_id(prefix, subtask, slot)
            # kept for the first re-send under this id: initialising one costs a round trip
            # for a producer id (about 0.5 s on some brokers)
            self._fenced[tid] = new_producer(self.conf, tid, self.config.transaction_timeout)

    def _marker_of(self, c: Committable) -> int:
        consumer, _ = self._marker(marker_group(c["prefix"], c["subtask"]))
        return committed_checkpoint(consumer, c["marker_topic"], c["marker_partition"],
                                    self.config.bootstrap_servers)

    def _commit_by_marker(self, c: Committable) -> None:
        """Commit ``c`` by its marker under its writer's transactional id (the writer is
        gone)."""
        from confluent_kafka import TopicPartition

        subtask, cid = c["subtask"], c["checkpoint"]
        group = marker_group(c["prefix"], subtask)
        tid = transactional_id(c["prefix"], subtask, c["slot"])
        producer = self._fenced.pop(tid, None) or new_producer(
            self.conf, tid, self.config.transaction_timeout)
        try:
            consumer, meta = self._marker(group)
            if committed_checkpoint(consumer, c["marker_topic"], c["marker_partition"],
                                    self.config.bootstrap_servers) >= cid:
                log.info("kafka sink: checkpoint %d (subtask %d) was committed already",
                         cid, subtask)
                if c["segment"]:
                    WriteAheadLog.delete_segment(c["segment"])
                return
            segment = c["segment"]
            if _gone(c):
                log.info("kafka sink: checkpoint %d (subtask %d) was committed already (its "
                         "write-ahead log segment is gone)", cid, subtask)
                return
            log.info("kafka sink: re-sending %d records of checkpoint %d (subtask %d) from the "
                     "write-ahead log", c["records"], cid, subtask)
            with kafka_errors(ROLE, f"re-sending checkpoint {cid} (subtask {subtask})",
                              self.config.bootstrap_servers):
                producer.begin_transaction()
                produce_segment(producer, segment)
                send_offsets(producer,
                             [TopicPartition(c["marker_topic"], c["marker_partition"], cid)],
                             meta, f"adding the commit marker of checkpoint {cid}",
                             self.config.bootstrap_servers)
                producer.commit_transaction(TIMEOUT_S)
            crash_point("kafka-resent-by-marker", cid)
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


def _by_subtask(committables: list[Committable]) -> dict[int, list[Committable]]:
    """Each subtask's committables in checkpoint order."""
    out: dict[int, list[Committable]] = {}
    for c in sorted(committables, key=lambda c: (c["subtask"], c["checkpoint"])):
        out.setdefault(c["subtask"], []).append(c)
    return out


def _gone(c: Committable) -> bool:
    """A segment goes only after its transaction committed (or was re-sent): gone means
    committed, whatever a broker's offsets say."""
    return c["segment"] is None or not WriteAheadLog.exists(c["segment"])
