"""Reads the partitions of one subtask: many records per poll, decoded together."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np

from formats.message import MessageDecoder
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError, HubError, TransientError
from runtime.schema import SchemaChange
from runtime.source import InputStatus, ReaderContext, ReaderOutput, SourceReader
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.split import KafkaPartitionSplit

log = logging.getLogger(__name__)

_VERSION_SHIFT = 10  # versions = offset << 10 | event index within the record (Canal: many)


class KafkaReader(SourceReader):
    """One consumer, assigned (never subscribed) to this subtask's partitions at their split
    offsets.  librdkafka fetches in its own threads; :meth:`poll_next` takes up to
    ``max-batch-messages`` records already fetched (``consume`` with no wait) and
    :meth:`wait_available` is where the thread blocks.  Each split's offset moves past a record
    only when the record's events were emitted, so :meth:`snapshot_state` is exact.  Per
    table, events carry ``versions`` derived from offsets (per key increasing: a key lives in
    one partition)."""

    def __init__(self, context: ReaderContext, config: KafkaSourceConfig):
        self.context = context
        self.config = config
        self.splits: dict[tuple[str, int], KafkaPartitionSplit] = {}
        self.decoders: dict[str, MessageDecoder] = {}
        self.consumer: Any = None
        self.no_more = False
        self._stash: list[Any] = []
        self._assigned: set[tuple[str, int]] = set()
        self._snapshots: dict[int, list[tuple[str, int, int]]] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._consumer()

    def _consumer(self) -> Any:
        if self.consumer is None:
            from confluent_kafka import Consumer

            self.consumer = Consumer(self.config.client_config())
        return self.consumer

    def add_splits(self, splits: list) -> None:
        from confluent_kafka import TopicPartition

        tps = []
        for s in splits:
            self.splits[(s.topic, s.partition)] = s
            if s.stop_offset is None or s.offset < s.stop_offset:
                tps.append(TopicPartition(s.topic, s.partition, s.offset))
                self._assigned.add((s.topic, s.partition))
        if tps:
            self._consumer().incremental_assign(tps)

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def snapshot_state(self, checkpoint_id: int) -> list[KafkaPartitionSplit]:
        out = [KafkaPartitionSplit(**s.to_dict()) for s in self.splits.values()]
        if self.config.group_id:
            self._snapshots[checkpoint_id] = [(s.topic, s.partition, s.offset) for s in out
                                              if s.offset >= 0]
        return out

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        offsets = self._snapshots.pop(checkpoint_id, None)
        for cid in [c for c in self._snapshots if c < checkpoint_id]:
            del self._snapshots[cid]
        if not offsets or self.consumer is None:
            return
        from confluent_kafka import KafkaException, TopicPartition

        try:  # for monitoring only (the checkpoint is what a restart resumes from)
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for t, p, o in offsets],
                                 asynchronous=True)
        except KafkaException as exc:
            log.warning("kafka source: committing offsets of checkpoint %d to group %r "
                        "failed (ignored, offsets live in the checkpoint): %s", checkpoint_id,
                        self.config.group_id, exc)

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None

    # -- reading ------------------------------------------------------------------------------
    def wait_available(self, timeout_s: float) -> None:
        if not self._stash and self.splits:
            self._stash = self._consume(min(timeout_s, 0.1))
        elif not self.splits:
            super().wait_available(timeout_s)

    def _consume(self, timeout: float) -> list[Any]:
        try:
            return self.consumer.consume(self.config.max_batch_messages, timeout)
        except Exception as exc:  # KafkaException: the client is unusable
            raise TransientError(f"kafka source: consuming failed: {exc}") from exc

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if not self.splits:
            return InputStatus.END_OF_INPUT if self.no_more else InputStatus.NOTHING_AVAILABLE
        msgs, self._stash = (self._stash or self._consume(0)), []
        if msgs:
            self._emit(msgs, output)
        self._finish_bounded(output, fetched=bool(msgs))
        if not self.splits and self.no_more:
            return InputStatus.END_OF_INPUT
        return InputStatus.MORE_AVAILABLE if msgs else InputStatus.NOTHING_AVAILABLE

    def _emit(self, msgs: list[Any], output: ReaderOutput) -> None:
        # runs of records of one partition, in order (consume returns them grouped)
        runs: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal() or not err.retriable():
                    raise HubError(f"kafka source: {m.topic()}[{m.partition()}]: {err.str()}")
                log.warning("kafka source: %s (the client retries)", err.str())
                continue
            runs[(m.topic(), m.partition())].append(m)
        for tp, run in runs.items():
            split = self.splits.get(tp)
            if split is None:
                continue  # unassigned meanwhile
            if split.stop_offset is not None:
                run = [m for m in run if m.offset() < split.stop_offset]
                if not run:
                    continue
            self._emit_run(split, run, output)
            split.offset = run[-1].offset() + 1

    def _emit_run(self, split: KafkaPartitionSplit, run: list[Any], output: ReaderOutput) -> None:
        decoder = self.decoders.get(split.topic)
        if decoder is None:
            decoder = self.decoders[split.topic] = self.config.message_format.decoder()
        keys = [m.key() for m in run]
        values = [m.value() for m in run]
        times = [m.timestamp()[1] for m in run]
        decoded = decoder.decode(keys, values, times, split.topic)
        for index, reason in decoded.bad:
            m = run[index]
            where = f"kafka {m.topic()}[{m.partition()}] offset {m.offset()}"
            self.context.dead_letter.report(
                BadRecordError(f"{where}: {reason}"), {"key": m.key(), "value": m.value()},
                f"kafka:{m.topic()}/{m.partition()}/{m.offset()}")
        offsets = np.array([m.offset() for m in run], dtype=np.int64)
        message_time = self.config.event_time == "message"
        for element, idx in zip(decoded.elements, decoded.indexes):
            if isinstance(element, SchemaChange):
                output.collect_schema_change(element, split.split_id)
                continue
            element = self._versioned(element, idx, offsets, times if message_time else None)
            output.collect(element, split.split_id)

    @staticmethod
    def _versioned(batch: ChangeBatch, idx: list[int], offsets: np.ndarray,
                   times: list[int] | None) -> ChangeBatch:
        ix = np.asarray(idx, dtype=np.int64)
        versions = offsets[ix] << _VERSION_SHIFT
        if len(ix) > 1:
            # several events of one record (Canal) get increasing low bits
            same = np.concatenate(([False], ix[1:] == ix[:-1]))
            if same.any():
                run_start = np.maximum.accumulate(np.where(~same, np.arange(len(ix)), 0))
                versions = versions + (np.arange(len(ix)) - run_start)
        if times is None:
            batch.versions = versions
            return batch
        return ChangeBatch(batch.schema, batch.ops, arrow=batch.arrow(), before=batch.before,
                           ts_ms=[times[i] for i in idx], positions=batch.positions,
                           versions=versions)

    def _finish_bounded(self, output: ReaderOutput, fetched: bool) -> None:
        """Bounded splits end once the consumer's position reached their stop offset (the
        position also moves past transaction markers, which are never delivered)."""
        bounded = [s for s in self.splits.values() if s.stop_offset is not None]
        if not bounded or self._stash:
            return
        from confluent_kafka import TopicPartition

        done = [s for s in bounded if s.offset >= s.stop_offset]  # type: ignore[operator]
        if not fetched:
            positions = self.consumer.position([TopicPartition(s.topic, s.partition)
                                                for s in bounded])
            for s, tp in zip(bounded, positions):
                if tp.offset >= 0 and tp.offset > s.offset:
                    s.offset = tp.offset  # only markers between: nothing left to emit
                if s.offset >= s.stop_offset and s not in done:  # type: ignore[operator]
                    done.append(s)
        if done:
            tps = [TopicPartition(s.topic, s.partition) for s in done
                   if (s.topic, s.partition) in self._assigned]
            if tps:
                self.consumer.incremental_unassign(tps)
            for s in done:
                self._assigned.discard((s.topic, s.partition))
                del self.splits[(s.topic, s.partition)]
                output.split_finished(s.split_id)
