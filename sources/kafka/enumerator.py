"""Finds the topic-partitions and hands each to one reader, for good."""
from __future__ import annotations

import logging
import re
import threading
import time
import zlib
from typing import Any

from runtime.errors import HubError, TerminalError, TransientError
from runtime.source import EnumeratorContext, SplitEnumerator
from sources.kafka.config import KafkaSourceConfig
from formats.clients.kafka import kafka_error, kafka_errors
from sources.kafka.split import EARLIEST, KafkaPartitionSplit

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0
_ROLE = "kafka source"


def _checked(tps: list[Any], what: str, servers: str) -> list[Any]:
    """``tps`` (TopicPartitions a client call answered) when none carries an error; else the
    first error, translated (a partition's error must not pass for an offset)."""
    for tp in tps:
        if tp.error is not None:
            raise kafka_error(tp.error, _ROLE, what, servers, tp.topic, tp.partition)
    return tps


def owner(topic: str, partition: int, parallelism: int) -> int:
    """The subtask that reads a partition: stable across restarts (Flink's rule, with a hash
    that does not change between Python processes)."""
    return ((zlib.crc32(topic.encode()) & 0x7FFFFFFF) + partition) % parallelism


def listed_topics(meta: Any, config: KafkaSourceConfig, unreadable: set[str]) -> dict[str, int]:
    """Topic -> number of partitions of the configured topics or pattern in ``meta`` (a
    client's ``ClusterMetadata``).  A listed topic that does not exist is terminal; a
    pattern-matched topic whose metadata the broker refused is warned about once (its name
    goes into ``unreadable``) and left out."""
    servers = config.bootstrap_servers
    if config.topic_pattern:
        rx = re.compile(config.topic_pattern)
        matching = {t: m for t, m in meta.topics.items()
                    if rx.fullmatch(t) and not t.startswith("__")}
        for t, m in matching.items():
            if m.error is not None and t not in unreadable:
                unreadable.add(t)
                log.warning("%s (not read while this lasts)",
                            kafka_error(m.error, _ROLE, "reading metadata", servers, t))
        return {t: len(m.partitions) for t, m in matching.items() if m.error is None}
    out = {}
    for t in config.topics:
        m = meta.topics.get(t)
        if m is not None and m.error is not None:
            raise kafka_error(m.error, _ROLE, "reading metadata", servers, t)
        if m is None or not m.partitions:
            # as Flink's KafkaSource: a listed topic must exist (else a bounded read would
            # end with nothing, an unbounded one wait without a word)
            raise TerminalError(
                f"{_ROLE}: topic {t!r} does not exist at {servers} (create it, or read "
                f"topics that appear later with topic-pattern)")
        out[t] = len(m.partitions)
    return out


def check_brokers(config: KafkaSourceConfig) -> None:
    """:meth:`KafkaSource.check <sources.kafka.source.KafkaSource.check>`: list the topics
    with an admin client of the source's connection settings, waiting at most
    ``_TIMEOUT_S``, and less when the client reports every broker down (a refused
    connection: the answer will not come in this attempt)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    down: list[Any] = []

    def on_error(err: Any) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            down.append(err)

    conf = {k: v for k, v in config.client_config().items()
            if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.", "client.")) or
            k in ("logger", "socket.connection.setup.timeout.ms")}
    conf["error_cb"] = on_error
    servers = config.bootstrap_servers
    admin = AdminClient(conf)
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        with kafka_errors(_ROLE, "connecting", servers):
            try:
                meta = admin.list_topics(timeout=min(1.0, max(deadline - time.monotonic(),
                                                              0.1)))
                break
            except Exception:
                admin.poll(0)  # serves error_cb: were all brokers reported down?
                if down or time.monotonic() >= deadline:
                    if down:
                        raise TransientError(
                            f"{_ROLE}: connecting at {servers}: no broker answers "
                            f"({down[0].name()}: every broker is down or unreachable)"
                        ) from None
                    raise
    listed_topics(meta, config, set())


class KafkaEnumerator(SplitEnumerator):
    """Discovers partitions (at start, then every ``partition-discovery-interval``), resolves
    where each starts (startup mode for the first discovery, earliest for partitions that
    appear later) and assigns it to its owner.  State: the ids of the partitions already
    assigned (O(partitions)) plus splits waiting for their reader to register, and whether
    the first discovery was done.

    A discovery (metadata, offset lookups) is blocking I/O: it runs on the executor's
    enumerator I/O thread (``context.call_async``), which alone uses the client while it
    runs, and its result is taken in the control thread.  Until the first one is in, a bounded
    source signals no reader that it has no more splits."""

    def __init__(self, context: EnumeratorContext, config: KafkaSourceConfig,
                 state: dict[str, Any] | None):
        self.context = context
        self.config = config
        self.assigned: set[str] = set(state["assigned"]) if state else set()
        self.pending: list[KafkaPartitionSplit] = (
            [KafkaPartitionSplit.from_dict(d) for d in state["pending"]] if state else [])
        #: the first discovery (with the startup mode) is still to come; checkpoints of older
        #: versions had it done
        self.first = state is None or not state.get("first_done", True)
        self.client: Any = None
        #: pattern-matched topics whose metadata the broker refused, warned about once
        self._unreadable: set[str] = set()
        self.discovering = False  # a discovery was handed to the I/O thread
        #: guards the client between the I/O thread and close()
        self._client_lock = threading.Lock()
        self._io_busy = False
        self._close_when_done = False

    def _errors(self, what: str, topic: str | None = None) -> Any:
        return kafka_errors(_ROLE, what, self.config.bootstrap_servers, topic)

    def start(self) -> None:
        """Errors of the first discovery end the job (translated: a broker down is
        transient, a listed topic that does not exist or refused credentials terminal);
        later discoveries log theirs and try again at the next round."""
        from confluent_kafka import Consumer

        with self._errors("creating the consumer"):
            self.client = Consumer(self.config.client_config())
        self._discover()
        interval = self.config.partition_discovery_interval
        if self.config.bounded == "none" and interval > 0:
            self.context.schedule(self._discover, interval)

    def _discover(self) -> None:
        """Hand a discovery to the I/O thread, unless one is on its way there."""
        if self.discovering:
            return
        self.discovering = True
        known, initial = frozenset(self.assigned), self.first
        self.context.call_async(lambda: self._fetch(known, initial),
                                lambda fresh, error: self._found(fresh, error, initial))

    def _fetch(self, known: frozenset[str], initial: bool) -> list[KafkaPartitionSplit]:
        """On the I/O thread: the partitions not in ``known``, with their starting offsets."""
        with self._client_lock:
            if self.client is None:
                raise HubError("kafka source: the enumerator was closed")
            self._io_busy = True
        try:
            with self._errors("discovering partitions"):
                fresh = []
                for topic, n in sorted(self._topics().items()):
                    for p in range(n):
                        sid = KafkaPartitionSplit.id_of(topic, p)
                        if sid not in known:
                            fresh.append(KafkaPartitionSplit(sid, topic, p))
                if fresh:
                    self._starting_offsets(fresh, initial=initial)
                return fresh
        finally:
            with self._client_lock:
                self._io_busy = False
                close = self._close_when_done
            if close:
                self._close_client()

    def _found(self, fresh: list[KafkaPartitionSplit] | None, error: BaseException | None,
               initial: bool) -> None:
        """A discovery's result, in the control thread."""
        self.discovering = False
        if error is not None:
            if initial:
                raise error
            log.warning("kafka source: partition discovery failed (retried in %.0fs): %s",
                        self.config.partition_discovery_interval, error)
            return
        fresh = [s for s in fresh or () if s.split_id not in self.assigned]
        if fresh:
            for s in fresh:
                self.assigned.add(s.split_id)
            self.pending.extend(fresh)
            log.info("kafka source: %d new partition(s): %s", len(fresh),
                     ", ".join(s.split_id for s in fresh[:10]))
        self.first = False
        self._assign_pending()

    def _topics(self) -> dict[str, int]:
        """Topic -> number of partitions, of the configured topics or the pattern."""
        with self._errors("listing topics"):
            meta = self.client.list_topics(timeout=_TIMEOUT_S)
        return listed_topics(meta, self.config, self._unreadable)

    def _starting_offsets(self, splits: list[KafkaPartitionSplit], initial: bool) -> None:
        from confluent_kafka import TopicPartition

        c, mode = self.config, self.config.startup_mode
        if initial and mode == "latest":
            for s, (_, high) in zip(splits, self._end_offsets(splits)):
                s.offset = high
        elif initial and mode == "group-offsets":
            tps = _checked(self.client.committed(
                [TopicPartition(s.topic, s.partition) for s in splits], timeout=_TIMEOUT_S),
                f"reading the offsets of group {c.group_id!r}", c.bootstrap_servers)
            for s, tp in zip(splits, tps):
                s.offset = tp.offset if tp.offset >= 0 else EARLIEST
            fresh = [s.split_id for s in splits if s.offset == EARLIEST]
            if fresh:  # said, not silent: the group never committed there
                log.info("kafka source: group %r has no committed offset for %s: starting "
                         "at the earliest offset", c.group_id, ", ".join(fresh[:10]))
        elif initial and mode == "timestamp":
            tps = _checked(self.client.offsets_for_times(
                [TopicPartition(s.topic, s.partition, c.startup_timestamp) for s in splits],
                timeout=_TIMEOUT_S), "looking up offsets by startup-timestamp",
                c.bootstrap_servers)
            for s, tp in zip(splits, tps):
                # -1: no record at or after the time: start at the end
                s.offset = tp.offset if tp.offset >= 0 else self.client.get_watermark_offsets(
                    TopicPartition(s.topic, s.partition), timeout=_TIMEOUT_S)[1]
            late = [s.split_id for s, tp in zip(splits, tps) if tp.offset < 0]
            if late:
                log.info("kafka source: no record at or after startup-timestamp %d in %s: "
                         "starting at the end", c.startup_timestamp, ", ".join(late[:10]))
        elif initial and mode == "specific-offsets":
            for s in splits:
                s.offset = c.startup_specific_offsets.get(s.split_id, EARLIEST)
        if c.bounded == "latest-offset":
            ends = self._end_offsets(splits)
            for s, (low, high) in zip(splits, ends):
                s.stop_offset = high
                if s.offset == EARLIEST:
                    s.offset = low

    def _end_offsets(self, splits: list[KafkaPartitionSplit]) -> list[tuple[int, int]]:
        """(low, high) watermark of each partition.  ListOffsets answers it; a fetch response
        carries it too, and that one is authoritative: some brokers (Tansu) answer
        ListOffsets(latest) with the last record *batch*'s base offset + 1.  So a fetch at
        the answered offset confirms it (one round trip for all partitions)."""
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(s.topic, s.partition) for s in splits]
        ends = [self.client.get_watermark_offsets(tp, timeout=_TIMEOUT_S) for tp in tps]
        probe = [TopicPartition(s.topic, s.partition, max(h - 1, lo))
                 for s, (lo, h) in zip(splits, ends) if h > lo]
        if not probe:
            return ends
        self.client.assign(probe)
        seen: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + _TIMEOUT_S
        while len(seen) < len(probe) and time.monotonic() < deadline:
            # at most one record per partition comes (none past a transaction marker): asking
            # for more would wait the whole timeout; a short one checks the watermarks often
            self.client.consume(len(probe), 0.01)
            for tp in probe:
                hw = self.client.get_watermark_offsets(tp, cached=True)
                if hw is not None and hw[1] >= 0:
                    seen[(tp.topic, tp.partition)] = hw[1]
        self.client.unassign()
        return [(lo, max(h, seen.get((tp.topic, tp.partition), h)))
                for tp, (lo, h) in zip(tps, ends)]

    def _assign_pending(self) -> None:
        readers = set(self.context.registered_readers())
        p = self.context.parallelism
        assignment: dict[int, list[KafkaPartitionSplit]] = {}
        waiting = []
        for s in self.pending:
            o = owner(s.topic, s.partition, p)
            if o in readers:
                assignment.setdefault(o, []).append(s)
            else:
                waiting.append(s)
        self.pending = waiting
        if assignment:
            self.context.assign_splits(assignment)  # type: ignore[arg-type]
        if self.config.bounded != "none" and not self.first:
            for r in readers:
                if not any(owner(s.topic, s.partition, p) == r for s in waiting):
                    self.context.signal_no_more_splits(r)

    def add_reader(self, subtask: int) -> None:
        self._assign_pending()

    def handle_split_request(self, subtask: int) -> None:
        """Readers don't ask: partitions are pushed to their owners."""

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        return {"assigned": sorted(self.assigned), "pending": [s.to_dict() for s in self.pending],
                "first_done": not self.first}

    def close(self) -> None:
        with self._client_lock:
            if self._io_busy:  # the I/O thread is using the client: it closes it when done
                self._close_when_done = True
                return
        self._close_client()

    def _close_client(self) -> None:
        with self._client_lock:
            client, self.client = self.client, None
        if client is not None:
            client.close()
