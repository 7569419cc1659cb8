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
from sinks.kafka.transactions import (LIVE, LIVE_LOCK, ROLE, TIMEOUT_S, Prepared,
                                      committed_checkpoint, group_metadata, marker_group,
                                      new_producer, produce_segment, send_offsets,
                                      transactional_id)
from formats.clients.kafka import kafka_errors

log = logging.getLogger(__name__)


class KafkaCommitter(Committer):
    """For each subtask, its committables in checkpoint order:

    1. the live producer of this process, when the writer handed it over: commit it (with
       the committables it took over, just before it: see :mod:`sinks.kafka.transactions`);
       a taken-over committable whose successor is not prepared yet is "not yet";
    2. else, or when that commit fails, the marker: the transaction committed if the marker
       group's offset is at least the checkpoint id; if not, re-send the WAL segment in a new
       transaction with the marker.

    One outcome per committable (:meth:`commit_each`): a subtask whose transaction fails to
    commit is retried alone (with its later committables, which must not overtake it), the
    other subtasks' are committed meanwhile.

    Idempotent: a committed checkpoint is a no-op (its marker says so).  The re-sending
    producer takes the transactional id of the writer's transaction (after a crash, or while
    that writer waits for the committer), which first completes or aborts whatever that
    transaction left in flight, so the marker read after it is final.
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
        return self._commit_all(committables, recovering=False)

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
            settle(self._commit_all(committables, recovering=True))
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

    def _commit_all(self, committables: list[Committable], recovering: bool
                    ) -> list[CommitOutcome]:
        outcomes: list[CommitOutcome] = []
        run: list[Committable] = []  # taken-over committables, then the one that took them
        #: subtask -> the error its commit met: its later committables wait behind it
        blocked: dict[int, HubError] = {}
        for c in _ordered(committables):
            if run and run[-1]["subtask"] != c["subtask"]:
                # taken over by a transaction not prepared yet: with a later checkpoint
                outcomes.extend(CommitOutcome.not_yet(x) for x in run)
                run = []
            if c["subtask"] in blocked:
                outcomes.append(CommitOutcome.failure(c, blocked[c["subtask"]]))
                continue
            run.append(c)
            with LIVE_LOCK:
                prepared = LIVE.get(c["key"])
            if prepared is not None and not prepared.claim():
                if not recovering:
                    continue  # its records are in the writer's next transaction
                prepared = None  # that writer is gone with its transaction: by marker
            try:
                with kafka_errors(ROLE, f"committing checkpoint {c['checkpoint']} (subtask "
                                        f"{c['subtask']})", self.config.bootstrap_servers):
                    already = self._commit_run(run, prepared, recovering)
            except HubError as exc:  # this subtask's: the others' go on
                outcomes.extend(CommitOutcome.failure(x, exc) for x in run)
                blocked[c["subtask"]] = exc
            else:
                make = CommitOutcome.already_committed if already else CommitOutcome.done
                outcomes.extend(make(x) for x in run)
            run = []
        outcomes.extend(CommitOutcome.not_yet(x) for x in run)
        return outcomes

    def _commit_run(self, run: list[Committable], prepared: Prepared | None,
                    recovering: bool) -> bool:
        """Commit ``run``; True when its marker said it was committed before."""
        from confluent_kafka import KafkaException

        last = run[-1]
        taken_over = run[0]["checkpoint"] if len(run) > 1 else 0
        if prepared is not None and not prepared.broken:
            if taken_over:
                crash_point("kafka-commit-taken-over", taken_over)
            try:
                prepared.producer.commit_transaction(TIMEOUT_S)
            except KafkaException as exc:
                prepared.broken = True
                log.warning("kafka sink: committing the transaction of checkpoint %d "
                            "(subtask %d) failed: %s; checking its marker",
                            last["checkpoint"], last["subtask"], exc)
            else:
                if taken_over:
                    crash_point("kafka-committed-taken-over", taken_over)
                for c in run:
                    if c["segment"]:
                        WriteAheadLog.delete_segment(c["segment"])
                self._done(run, prepared)
                return False
        # The writer's id is free to take while the writer waits for this commit (or after
        # a crash); else an id of the committer's own, not to fence a live writer.
        fence = recovering or prepared is not None
        already = True
        for c in run:  # a failure raises with all of them still live: the retry comes here
            already = self._commit_by_marker(c, fence) and already
        self._done(run, prepared)
        return already

    @staticmethod
    def _done(run: list[Committable], prepared: Prepared | None) -> None:
        with LIVE_LOCK:
            for c in run:
                LIVE.pop(c["key"], None)
        if prepared is not None:
            prepared.finish()

    def _commit_by_marker(self, c: Committable, fence: bool) -> bool:
        """Commit ``c`` by its marker; True when it was committed before."""
        from confluent_kafka import TopicPartition

        subtask, cid = c["subtask"], c["checkpoint"]
        group = marker_group(c["prefix"], subtask)
        tid = transactional_id(c["prefix"], subtask, c["slot"] if fence else "resend")
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
                return True
            segment = c["segment"]
            if segment is None or not WriteAheadLog.exists(segment):
                # A segment goes only after its transaction committed (or was re-sent):
                # gone means committed, whatever a broker's offsets say.
                log.info("kafka sink: checkpoint %d (subtask %d) was committed already (its "
                         "write-ahead log segment is gone)", cid, subtask)
                return True
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
            return False
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
