"""The Kafka source's fetch loop: a thread of the reader that takes records out of the client
and hands them over as runs per partition, through a small bounded queue.

Why a thread: taking records out of confluent-kafka costs Python calls per record (the
client builds a ``Message`` object for each, and its fields come out one call at a time),
while decoding a run (Arrow's JSON reader) releases the GIL.  In a thread of their own the two
overlap on two cores instead of taking turns.

Nothing here touches split progress: a run is only *fetched*.  The reader moves a split's
offset when it has emitted the run's events, so a checkpoint never holds the offset of a
record that is merely waiting in this queue.
"""
from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from formats.clients.kafka import is_transient, kafka_error, translate

log = logging.getLogger(__name__)

#: How long one ``consume`` waits for records: also how long ``close`` may wait for the
#: thread, which is in the time of a bounded read (its end is the pipeline's end).
_WAIT_S = 0.02
#: How long an assignment waits for the metadata of a topic new to the client.
_METADATA_WAIT_S = 2.0


@dataclass(slots=True)
class Run:
    """Records of one partition in offset order, the fields the reader decodes as lists."""

    topic: str
    partition: int
    offsets: np.ndarray  # int64, increasing
    keys: list[bytes | None]
    values: list[bytes | None]
    timestamps: list[int]  # epoch ms

    def __len__(self) -> int:
        return len(self.offsets)

    def before(self, stop: int | None) -> Run:
        """The records with an offset below ``stop`` (None: all of them)."""
        o = self.offsets
        if stop is None or not len(o) or o[-1] < stop:
            return self
        k = int(np.searchsorted(o, stop))
        return Run(self.topic, self.partition, o[:k], self.keys[:k], self.values[:k],
                   self.timestamps[:k])


@dataclass(slots=True)
class Positions:
    """Where the client stands in some partitions (the offset after the last record it
    delivered or skipped, e.g. a transaction marker), taken after every run handed over
    before this item: the reader has emitted those runs when it gets here."""

    offsets: dict[tuple[str, int], int]


Fetched = list[Run] | Positions


class KafkaFetcher(threading.Thread):
    """Calls ``consume(max_messages)`` in a loop and queues what it got as a list of
    :class:`Run` (at most ``capacity`` lists wait: the reader's backpressure stops the loop).
    When a call comes back empty and ``watched()`` names partitions (the reader's bounded
    splits), it queues their :class:`Positions` instead.  An error ends the loop and is
    raised by :meth:`take` in the reader's thread.

    Every other call on the client goes through :meth:`assign`, :meth:`unassign` or
    :meth:`call` and runs in this thread between two ``consume``: an ``incremental_assign``
    from another thread waits for a running ``consume`` and, with the loop calling it again at
    once, may wait for ever; closing the client under a running ``consume`` crashes, so
    :meth:`close` ends the thread first.  With nothing assigned the loop waits for such a call
    instead of consuming, so a first assignment starts fetching at once."""

    def __init__(self, consumer: Any, max_messages: int,
                 watched: Callable[[], Sequence[tuple[str, int]]], capacity: int = 2,
                 servers: str = "the brokers"):
        super().__init__(name="kafka-fetch", daemon=True)
        self.consumer = consumer
        self.servers = servers  # for the error lines
        self.max_messages = max_messages
        self.watched = watched
        self.stopped = threading.Event()
        self._out: queue.Queue = queue.Queue(capacity)
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._assigned: set[tuple[str, int]] = set()  # used in this thread only
        self._known: set[str] = set()  # topics whose metadata was asked for (this thread)
        self._topic: str | None = None  # the one topic of the assigned partitions (this thread)

    def run(self) -> None:
        # a put that waits for room ends when close() empties the queue
        try:
            while not self.stopped.is_set():
                item = self._fetch()
                if item is not None:
                    self._out.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            # the client's errors (of consume, position, assign, a commit) translated here
            self._out.put(translate(exc, "kafka source", "consuming", self.servers))

    def call(self, fn: Callable[[Any], None]) -> None:
        """Run ``fn(consumer)`` in the fetch thread before its next ``consume`` (or in
        :meth:`close`, once the thread ended); in order of the calls.  What ``fn`` raises ends
        the loop, as a failing ``consume`` does."""
        self._calls.put(fn)

    def assign(self, tps: list[Any]) -> None:
        """``incremental_assign(tps)`` (TopicPartitions with their offsets), as :meth:`call`.
        The topics' metadata is asked for first (once per topic), as a bare loop's
        ``list_topics`` does: a partition assigned before the client knows its leader waits
        for the client's next scan of unknown topics (once a second) before it is fetched."""
        def assign(consumer: Any) -> None:
            for topic in sorted({tp.topic for tp in tps} - self._known):
                self._learn(consumer, topic)
            consumer.incremental_assign(tps)
            self._assigned.update((tp.topic, tp.partition) for tp in tps)
            self._one_topic()

        self.call(assign)

    def learn(self, topics: Sequence[str]) -> None:
        """The metadata of ``topics`` into the client's cache ahead of their assignment, as
        :meth:`call` (:meth:`assign` then skips them)."""
        def learn(consumer: Any) -> None:
            for topic in sorted(set(topics) - self._known):
                self._learn(consumer, topic)

        if topics:
            self.call(learn)

    def unassign(self, tps: list[Any]) -> None:
        """``incremental_unassign(tps)``, as :meth:`call`."""
        def unassign(consumer: Any) -> None:
            consumer.incremental_unassign(tps)
            self._assigned.difference_update((tp.topic, tp.partition) for tp in tps)
            self._one_topic()

        self.call(unassign)

    def _one_topic(self) -> None:
        """The topic of every assigned partition when there is one (records of partitions no
        longer assigned are not delivered: the client drops what it fetched for them)."""
        topics = {t for t, _ in self._assigned}
        self._topic = topics.pop() if len(topics) == 1 else None

    def _learn(self, consumer: Any, topic: str) -> None:
        """The metadata of ``topic`` into the client's cache.  Only a head start: when it
        fails (a broker away), the client finds the leaders by itself a little later."""
        from confluent_kafka import KafkaException

        try:
            consumer.list_topics(topic, timeout=_METADATA_WAIT_S)
            self._known.add(topic)
        except KafkaException as exc:
            log.info("kafka source: no metadata of topic %r from %s yet (%s): fetching starts "
                     "when the client has it", topic, self.servers, exc)

    def _run_calls(self, wait: float = 0.0) -> None:
        """The calls queued; with ``wait``, up to that long for the first one."""
        while True:
            try:
                fn = self._calls.get(timeout=wait) if wait else self._calls.get_nowait()
            except queue.Empty:
                return
            fn(self.consumer)
            wait = 0.0

    def _fetch(self) -> Fetched | None:
        self._run_calls(wait=0.0 if self._assigned else _WAIT_S)
        if not self._assigned:
            return None
        with _collector_paused():
            msgs = self.consumer.consume(self.max_messages, _WAIT_S)
            runs = runs_of(msgs, self.servers, self._topic) if msgs else None
            del msgs  # the Message objects go before the collector comes back
        if runs is not None:
            return runs or None
        watched = self.watched()
        if not watched:
            return None
        from confluent_kafka import TopicPartition

        positions = self.consumer.position([TopicPartition(t, p) for t, p in watched])
        return Positions({(tp.topic, tp.partition): tp.offset for tp in positions
                          if tp.offset >= 0})

    def take(self, timeout: float = 0.0) -> Fetched | None:
        """The next item, waiting up to ``timeout`` seconds for one (0: not at all); None
        when there is none.  Raises the error that ended the loop."""
        try:
            item = self._out.get(timeout=timeout) if timeout > 0 else self._out.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def queued(self) -> int:
        """How many takes wait for the reader (at most ``capacity``)."""
        return self._out.qsize()

    def close(self, timeout: float = 10.0) -> None:
        """End the loop, wait for the thread, run the calls left (e.g. the commit of the
        last checkpoint's offsets) and close the client.  Works also when the thread never
        started."""
        self.stopped.set()
        self._calls.put(_nothing)  # wakes a loop that waits for calls (nothing assigned)
        while True:  # room for the one put the loop may be in or about to make
            try:
                self._out.get_nowait()
            except queue.Empty:
                break
        if self.is_alive():
            self.join(timeout)
        if self.is_alive():
            log.warning("kafka source: the fetch thread did not end within %.0fs; its consumer "
                        "is left open (closing it under a running consume would crash)",
                        timeout)
            return
        try:
            self._run_calls()
        except Exception as exc:  # noqa: BLE001 - closing: nothing reads on to raise it in
            log.warning("kafka source: a client call left for after the fetch loop failed "
                        "(ignored, the consumer closes now): %s", exc)
        self.consumer.close()


def _nothing(consumer: Any) -> None:
    pass


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one take.  The client allocates a Message per
    record, a container the collector tracks: thousands per take, each living until the take
    is split into runs, so every few hundred allocations start a collection that traces all
    of them again (and now and then the whole heap) while none can be part of a cycle.  They
    are freed by reference counting before the collector is back; the allocations of other
    threads in the meantime are collected after.  Leaves the collector alone when it is off
    already (the application's choice, or another fetcher's pause)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def runs_of(msgs: list[Any], servers: str = "the brokers", topic: str | None = None
            ) -> list[Run]:
    """The records of each partition, in order; error events logged or raised.  Vectorised:
    a take holds thousands of records and usually a few partitions of one topic, in a few
    stretches of one partition each.  ``topic``: the one topic of every assigned partition
    (no call per record to ask), None when there may be several."""
    message = type(msgs[0])  # its unbound methods: the fastest way to call them in map()
    if any(map(message.error, msgs)):
        msgs = _without_errors(msgs, servers)
        if not msgs:
            return []
    parts = np.fromiter(map(message.partition, msgs), np.int64, len(msgs))
    groups: list[tuple[tuple[str, int], Sequence[Any]]]
    topics = None if topic is not None else list(map(message.topic, msgs))
    if topics is not None and topics.count(topics[0]) != len(topics):
        by_tp: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for m, t, p in zip(msgs, topics, parts.tolist()):
            by_tp[(t, p)].append(m)
        groups = list(by_tp.items())
    else:
        one = topic if topics is None else topics[0]
        cuts = (np.flatnonzero(parts[1:] != parts[:-1]) + 1).tolist()
        if not cuts:
            groups = [((one, int(parts[0])), msgs)]
        else:
            # each partition's stretches, joined in order (list slices: no call per record)
            by_p: dict[int, list[Any]] = {}
            for a, b in zip([0] + cuts, cuts + [len(msgs)]):
                by_p.setdefault(int(parts[a]), []).extend(msgs[a:b])
            groups = [((one, p), g) for p, g in by_p.items()]
    # every field out of the records here: the records themselves are freed before the
    # collector is back (see _collector_paused); a run keeping them would have it trace
    # thousands of them at every collection until the run is emitted
    return [Run(t, p, _offsets(g, message), list(map(message.key, g)),
                list(map(message.value, g)), list(map(_SECOND, map(message.timestamp, g))))
            for (t, p), g in groups]


def _offsets(g: Sequence[Any], message: Any) -> np.ndarray:
    """The offsets of one partition's records: a partition's offsets only grow, so when the
    first and last are as far apart as the records are many, they are every offset between
    (the usual case: no transaction markers or compacted records between them)."""
    first, last = g[0].offset(), g[-1].offset()
    if last - first == len(g) - 1:
        return np.arange(first, last + 1, dtype=np.int64)
    return np.fromiter(map(message.offset, g), np.int64, len(g))


_SECOND = itemgetter(1)  # of (timestamp type, timestamp)


class ClientErrorLog:
    """The consumer's ``error_cb``.  Errors of the client rather than of a partition (a
    broker's connection lost, all brokers down) come only there, never among the records, and
    the client reconnects by itself; each is logged, once while it lasts (a reconnecting
    client reports it at every attempt), so that a source waiting for its brokers says so."""

    #: the same error again within this many seconds is the same outage
    QUIET_S = 30.0

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self.last: tuple[int, float] | None = None  # (error code, when logged)

    def __call__(self, err: Any) -> None:
        now = time.monotonic()
        if self.last is not None and self.last[0] == err.code() \
                and now - self.last[1] < self.QUIET_S:
            return
        self.last = (err.code(), now)
        log.warning("%s (the client reconnects and fetches on)",
                    kafka_error(err, "kafka source", "consuming", self.servers))


def _without_errors(msgs: list[Any], servers: str) -> list[Any]:
    """The records without the error events among them.  A transient one (a lost
    connection, all brokers down, a leader change) is logged: the client reconnects and
    fetches on by itself.  A terminal one (refused credentials, a topic gone) raises."""
    out = []
    for m in msgs:
        err = m.error()
        if err is None:
            out.append(m)
            continue
        error = kafka_error(err, "kafka source", "consuming", servers, m.topic(),
                            m.partition())
        if not is_transient(err):
            raise error
        log.warning("%s (the client retries)", error)
    return out
