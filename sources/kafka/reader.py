"""Reads the partitions of one subtask: many records per poll, decoded together."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from formats.base import Decoded, MessageDecoder
from formats.clients.kafka import kafka_errors
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import SchemaChange
from runtime.source import InputStatus, ReaderContext, ReaderOutput, SourceReader
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.fetcher import ClientErrorLog, Fetched, KafkaFetcher, Positions, Run
from sources.kafka.split import KafkaPartitionSplit

log = logging.getLogger(__name__)

_VERSION_SHIFT = 10  # versions = offset << 10 | event index within the record (Canal: many)


class KafkaReader(SourceReader):
    """One consumer, assigned (never subscribed) to this subtask's partitions at their split
    offsets.  A :class:`~sources.kafka.fetcher.KafkaFetcher` thread takes up to
    ``max-batch-messages`` records per call out of the client while :meth:`poll_next`
    decodes and emits what it took before; :meth:`wait_available` is where this thread
    blocks.  Each split's offset moves past a record only when the record's events were
    emitted (never when it was merely fetched), so :meth:`snapshot_state` is exact.  Per
    table, events carry ``versions`` derived from offsets (per key increasing: a key lives in
    one partition)."""

    def __init__(self, context: ReaderContext, config: KafkaSourceConfig):
        self.context = context
        self.config = config
        self.splits: dict[tuple[str, int], KafkaPartitionSplit] = {}
        self.decoders: dict[str, MessageDecoder] = {}
        self.fetcher: KafkaFetcher | None = None
        self.no_more = False
        self._stash: Fetched | None = None  # taken by wait_available, for poll_next
        self._assigned: set[tuple[str, int]] = set()
        #: the assigned partitions of bounded splits, for the fetcher (a tuple: it reads it
        #: from its own thread, this one replaces it)
        self._watched: tuple[tuple[str, int], ...] = ()
        self._snapshots: dict[int, list[tuple[str, int, int]]] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        fetcher = self._fetcher()
        fetcher.start()
        # the listed topics' metadata while the enumerator looks for the splits' offsets (a
        # bounded source's end offsets take a fetch round trip): the first assignment then
        # fetches at once instead of asking for it first
        fetcher.learn(self.config.topics)

    def _fetcher(self) -> KafkaFetcher:
        """The fetch thread and its consumer (the thread starts in :meth:`start`: restored
        splits come before it)."""
        if self.fetcher is None:
            from confluent_kafka import Consumer

            servers = self.config.bootstrap_servers
            with kafka_errors("kafka source", "creating the consumer", servers):
                consumer = Consumer({**self.config.client_config(),
                                     "error_cb": ClientErrorLog(servers)})
            self.fetcher = KafkaFetcher(consumer, self.config.max_batch_messages,
                                        lambda: self._watched, servers=servers)
        return self.fetcher

    def add_splits(self, splits: list) -> None:
        from confluent_kafka import TopicPartition

        tps = []
        for s in splits:
            self.splits[(s.topic, s.partition)] = s
            if s.stop_offset is None or s.offset < s.stop_offset:
                tps.append(TopicPartition(s.topic, s.partition, s.offset))
                self._assigned.add((s.topic, s.partition))
        if tps:
            self._fetcher().assign(tps)
        self._watch()

    def _watch(self) -> None:
        self._watched = tuple((s.topic, s.partition) for s in self.splits.values()
                              if s.stop_offset is not None
                              and (s.topic, s.partition) in self._assigned)

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
        if not offsets or self.fetcher is None:
            return
        from confluent_kafka import KafkaException, TopicPartition

        def commit(consumer: Any) -> None:
            try:  # for monitoring only (the checkpoint is what a restart resumes from)
                consumer.commit(offsets=[TopicPartition(t, p, o) for t, p, o in offsets],
                                asynchronous=True)
            except KafkaException as exc:
                log.warning("kafka source: committing offsets of checkpoint %d to group %r "
                            "failed (ignored, offsets live in the checkpoint): %s",
                            checkpoint_id, self.config.group_id, exc)

        self.fetcher.call(commit)

    def close(self) -> None:
        if self.fetcher is not None:
            self.fetcher.close()
            self.fetcher = None

    # -- reading ------------------------------------------------------------------------------
    def wait_available(self, timeout_s: float) -> None:
        if self._stash is None and self.splits and self.fetcher is not None:
            self._stash = self.fetcher.take(min(timeout_s, 0.1))
        elif not self.splits:
            super().wait_available(timeout_s)

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if not self.splits:
            return InputStatus.END_OF_INPUT if self.no_more else InputStatus.NOTHING_AVAILABLE
        assert self.fetcher is not None, "KafkaReader.poll_next before start"
        item, self._stash = (self._stash if self._stash is not None else self.fetcher.take()), None
        if isinstance(item, list):
            self._emit(item, output)
        self._finish_bounded(output, item if isinstance(item, Positions) else None)
        if not self.splits and self.no_more:
            return InputStatus.END_OF_INPUT
        return InputStatus.MORE_AVAILABLE if isinstance(item, list) \
            else InputStatus.NOTHING_AVAILABLE

    def _emit(self, runs: list[Run], output: ReaderOutput) -> None:
        live: dict[str, list[tuple[KafkaPartitionSplit, Run]]] = {}
        for run in runs:
            split = self.splits.get((run.topic, run.partition))
            if split is None:
                continue  # unassigned meanwhile
            run = run.before(split.stop_offset)
            if len(run):
                live.setdefault(run.topic, []).append((split, run))
        for topic, items in live.items():
            self._emit_topic(topic, items, output)

    def _emit_topic(self, topic: str, items: list[tuple[KafkaPartitionSplit, Run]],
                    output: ReaderOutput) -> None:
        """The runs of one topic decoded in one call (a decoder's cost per call is paid once
        per take, not once per partition), then emitted run by run: each run's events under
        its split, and its split's offset moved past it."""
        decoder = self.decoders.get(topic)
        if decoder is None:
            decoder = self.decoders[topic] = self.config.message_format.decoder()
        runs = [run for _, run in items]
        if len(runs) == 1:
            keys, values, timestamps = runs[0].keys, runs[0].values, runs[0].timestamps
        else:  # list concatenation: no Python step per record
            keys, values, timestamps = [], [], []
            for r in runs:
                keys += r.keys
                values += r.values
                timestamps += r.timestamps
        decoded = decoder.decode(keys, values, timestamps, topic)
        starts = np.cumsum([0] + [len(r) for r in runs])
        for (split, run), part in zip(items, split_decoded(decoded, starts)):
            self._emit_run(split, run, part, output)
            split.offset = int(run.offsets[-1]) + 1

    def _emit_run(self, split: KafkaPartitionSplit, run: Run, decoded: Decoded,
                  output: ReaderOutput) -> None:
        for index, reason in decoded.bad:
            where = f"{split.topic}[{split.partition}] offset {run.offsets[index]}"
            self.context.dead_letter.report(
                BadRecordError(f"kafka {where}: {reason}"),
                {"key": run.keys[index], "value": run.values[index]},
                f"kafka:{split.topic}/{split.partition}/{run.offsets[index]}")
        message_time = np.asarray(run.timestamps, np.int64) \
            if self.config.event_time == "message" else None
        for element, idx in zip(decoded.elements, decoded.indexes):
            if isinstance(element, SchemaChange):
                output.collect_schema_change(element, split.split_id)
                continue
            element = self._versioned(element, idx, run.offsets, message_time)
            output.collect(element, split.split_id)

    @staticmethod
    def _versioned(batch: ChangeBatch, idx: Sequence[int], offsets: np.ndarray,
                   times: np.ndarray | None) -> ChangeBatch:
        ix = _index_array(idx)
        whole = len(ix) == len(offsets) and (
            idx == range(len(ix)) if isinstance(idx, range)
            else bool((ix == np.arange(len(ix))).all()))
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

    def _finish_bounded(self, output: ReaderOutput, positions: Positions | None = None
                        ) -> None:
        """Bounded splits end once their offset reached the stop offset.  ``positions``
        (the client's, after everything emitted so far) also move offsets past what is never
        delivered (transaction markers) when nothing came."""
        bounded = [s for s in self.splits.values() if s.stop_offset is not None]
        if not bounded:
            return
        if positions is not None:
            for s in bounded:
                at = positions.offsets.get((s.topic, s.partition), -1)
                if at > s.offset:
                    s.offset = at  # only markers between: nothing left to emit
        done = [s for s in bounded if s.offset >= s.stop_offset]  # type: ignore[operator]
        if not done:
            return
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(s.topic, s.partition) for s in done
               if (s.topic, s.partition) in self._assigned]
        if tps:
            self._fetcher().unassign(tps)
        for s in done:
            self._assigned.discard((s.topic, s.partition))
            del self.splits[(s.topic, s.partition)]
            output.split_finished(s.split_id)
        self._watch()


def split_decoded(decoded: Decoded, starts: np.ndarray) -> list[Decoded]:
    """What a decoder made of runs laid one after the other (run ``k``: messages
    ``starts[k]`` to ``starts[k+1]``), as each run's own :class:`Decoded` with indexes counted
    from the run's start.  Message order is kept, so each run gets what decoding it alone would
    have given, with batches that span runs cut where the runs meet (zero-copy slices).
    Decoders list each element's message indexes in order."""
    k = len(starts) - 1
    if k == 1:
        return [decoded]
    out = [Decoded() for _ in range(k)]
    for i, reason in decoded.bad:
        r = int(np.searchsorted(starts, i, side="right")) - 1
        out[r].bad.append((i - int(starts[r]), reason))
    for element, idx in zip(decoded.elements, decoded.indexes):
        ix = _index_array(idx)
        # where each run's events begin and end within this element
        bounds = np.searchsorted(ix, starts).tolist()
        for r in range(k):
            lo, hi = bounds[r], bounds[r + 1]
            if lo == hi:
                continue
            piece = element if (lo, hi) == (0, len(ix)) or isinstance(element, SchemaChange) \
                else element.slice(lo, hi)
            out[r].elements.append(piece)
            start = int(starts[r])
            out[r].indexes.append(range(idx[lo] - start, idx[hi - 1] - start + 1)
                                  if isinstance(idx, range) else (ix[lo:hi] - start).tolist())
    return out


def _index_array(idx: Sequence[int]) -> np.ndarray:
    """Message indexes as an int64 array; a ``range`` (a decoder's whole take, contiguous)
    without a Python step per message."""
    if isinstance(idx, range):
        return np.arange(idx.start, idx.stop, idx.step, dtype=np.int64)
    return np.asarray(idx, dtype=np.int64)
