"""Reads the partitions of one subtask: many records per poll, decoded together."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from operator import itemgetter
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
        message = type(msgs[0])  # its unbound methods: the fastest way to call them in map()
        for tp, run in self._runs(msgs, message):
            split = self.splits.get(tp)
            if split is None:
                continue  # unassigned meanwhile
            offsets = np.fromiter(map(message.offset, run), np.int64, len(run))
            if split.stop_offset is not None and offsets[-1] >= split.stop_offset:
                keep = int(np.searchsorted(offsets, split.stop_offset))
                run, offsets = run[:keep], offsets[:keep]
                if not run:
                    continue
            self._emit_run(split, run, offsets, message, output)
            split.offset = int(offsets[-1]) + 1

    @staticmethod
    def _runs(msgs: list[Any], message: Any) -> list[tuple[tuple[str, int], Sequence[Any]]]:
        """The records of each partition, in order; errors logged or raised.  Vectorised:
        a poll holds thousands of records and usually a few partitions of one topic."""
        if any(map(message.error, msgs)):
            msgs = _without_errors(msgs)
            if not msgs:
                return []
        topics = list(map(message.topic, msgs))
        parts = np.fromiter(map(message.partition, msgs), np.int64, len(msgs))
        if topics.count(topics[0]) != len(topics):
            runs: dict[tuple[str, int], list[Any]] = defaultdict(list)
            for m, t, p in zip(msgs, topics, parts.tolist()):
                runs[(t, p)].append(m)
            return list(runs.items())
        if (parts == parts[0]).all():
            return [((topics[0], int(parts[0])), msgs)]
        out = []
        for p in np.unique(parts).tolist():
            idx = np.flatnonzero(parts == p).tolist()
            out.append(((topics[0], p), itemgetter(*idx)(msgs) if len(idx) > 1
                        else [msgs[idx[0]]]))
        return out

    def _emit_run(self, split: KafkaPartitionSplit, run: Sequence[Any], offsets: np.ndarray,
                  message: Any, output: ReaderOutput) -> None:
        decoder = self.decoders.get(split.topic)
        if decoder is None:
            decoder = self.decoders[split.topic] = self.config.message_format.decoder()
        keys = list(map(message.key, run))
        values = list(map(message.value, run))
        times = list(map(_SECOND, map(message.timestamp, run)))
        decoded = decoder.decode(keys, values, times, split.topic)
        for index, reason in decoded.bad:
            m = run[index]
            where = f"kafka {m.topic()}[{m.partition()}] offset {m.offset()}"
            self.context.dead_letter.report(
                BadRecordError(f"{where}: {reason}"), {"key": m.key(), "value": m.value()},
                f"kafka:{m.topic()}/{m.partition()}/{m.offset()}")
        message_time = np.asarray(times, np.int64) if self.config.event_time == "message" \
            else None
        for element, idx in zip(decoded.elements, decoded.indexes):
            if isinstance(element, SchemaChange):
                output.collect_schema_change(element, split.split_id)
                continue
            element = self._versioned(element, idx, offsets, message_time)
            output.collect(element, split.split_id)

    @staticmethod
    def _versioned(batch: ChangeBatch, idx: list[int], offsets: np.ndarray,
                   times: np.ndarray | None) -> ChangeBatch:
        ix = np.asarray(idx, dtype=np.int64)
        whole = len(ix) == len(offsets) and bool((ix == np.arange(len(ix))).all())
        versions = (offsets if whole else offsets[ix]) << _VERSION_SHIFT
        if len(ix) > 1 and not whole:
            # several events of one record (Canal) get increasing low bits
            same = np.concatenate(([False], ix[1:] == ix[:-1]))
            if same.any():
                run_start = np.maximum.accumulate(np.where(~same, np.arange(len(ix)), 0))
                versions = versions + (np.arange(len(ix)) - run_start)
        if times is None:
            batch.versions = versions
            return batch
        return ChangeBatch(batch.schema, batch.ops, arrow=batch.arrow(), before=batch.before,
                           ts_ms=times if whole else times[ix], positions=batch.positions,
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


_SECOND = itemgetter(1)  # of (timestamp type, timestamp)


def _without_errors(msgs: list[Any]) -> list[Any]:
    """The records without the error events among them: a fatal or non-retriable error
    raises, others are logged (the client retries them)."""
    out = []
    for m in msgs:
        err = m.error()
        if err is None:
            out.append(m)
        elif err.fatal() or not err.retriable():
            raise HubError(f"kafka source: {m.topic()}[{m.partition()}]: {err.str()}")
        else:
            log.warning("kafka source: %s (the client retries)", err.str())
    return out
