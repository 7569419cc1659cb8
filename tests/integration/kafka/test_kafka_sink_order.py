"""Per-key order of the exactly-once Kafka sink when a checkpoint is aborted: the writer gives
its prepared transaction up, and what that transaction held must still become visible before
anything the subtask wrote after it (read_committed consumers read in log order)."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from runtime.batch import ChangeBatch
from runtime.checkpoint.coordinator import CheckpointCoordinator
from runtime.checkpoint.storage import CheckpointStorage
from runtime.metrics import PipelineMetrics
from runtime.sink import CommitContext, Committer, SinkWriter, WriterContext
from tests.conformance.harness import ORDERS
from tests.integration.kafka.helpers import sink

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def change(version: int, keys: range = range(5)) -> ChangeBatch:
    """An update of every key in ``keys`` to ``version`` (its name)."""
    rows = [(k, f"v{version}", Decimal(version)) for k in keys]
    return ChangeBatch(ORDERS, "u" * len(rows), rows=rows, ts_ms=1_700_000_000_000 + version)


def versions(kafka_server, topic: str) -> dict[int, list[int]]:
    """For each key, the versions in the order a read_committed consumer sees them."""
    out: dict[int, list[int]] = {}
    for m in kafka_server.consume_all(topic):
        v = json.loads(m.value())
        out.setdefault(v["id"], []).append(int(v["name"][1:]))
    return out


def assert_in_order(kafka_server, topic: str, committed: list[int],
                    keys: range = range(5)) -> None:
    """Every key's versions as a read_committed consumer sees them are ``committed``."""
    seen = versions(kafka_server, topic)
    assert sorted(seen) == list(keys)
    for key, vs in seen.items():
        assert vs == committed, (key, vs)


class Told(Committer):
    """The committer as the runtime drives it: the writer hears its checkpoint is stored
    (and commits), then the committer commits (confirms)."""

    def __init__(self, inner: Committer, writer: SinkWriter):
        self.inner, self.writer = inner, writer

    def commit(self, committables, context):
        self.writer.notify_checkpoint_stored(context.checkpoint_id)
        return self.inner.commit(committables, context)

    def commit_each(self, committables, context):
        self.writer.notify_checkpoint_stored(context.checkpoint_id)
        return self.inner.commit_each(committables, context)


@pytest.fixture
def parts(kafka_server, tmp_path):
    """A writer (subtask 0 of 1), the committer and a coordinator whose checkpoints time out
    at once unless completed in the same call (the writer, whose notifications are not
    delivered while it waits, takes a transaction over at once)."""
    topic = kafka_server.create_topic(partitions=2)
    s = sink(kafka_server, topic=topic, **{"transactional-id-prefix": f"ord-{topic}"})
    storage = CheckpointStorage(str(tmp_path))
    w = s.create_writer(WriterContext("p", 0, 1, "a1", storage.state_dir,
                                      checkpoint_timeout_s=0.05), None)
    committer = s.create_committer()
    coord = CheckpointCoordinator("p", storage, Told(committer, w), 1, 1, 0.0, 0.05,
                                  PipelineMetrics(1))
    yield topic, w, committer, coord
    w.close()
    committer.close()


def barrier(coord, w) -> int:
    """Trigger a checkpoint; the writer prepares at its barrier and acks."""
    p = coord.trigger({})
    coord.ack_sink(0, p.checkpoint_id, w.prepare_commit(p.checkpoint_id), None, None)
    return p.checkpoint_id


def finish(coord, cid: int, complete: bool) -> None:
    """The source acks (complete) or never does, and the checkpoint times out (aborted)."""
    if complete:
        assert coord.ack_source(0, cid, [])
    else:
        time.sleep(0.06)
        coord.check_timeout()
        assert coord.pending is None and coord.carried


def checkpoint(coord, w, complete: bool) -> None:
    finish(coord, barrier(coord, w), complete)


def test_given_up_transaction_is_visible_before_later_records(kafka_server, parts):
    topic, w, committer, coord = parts
    w.write(change(1))
    checkpoint(coord, w, complete=False)  # its transaction is prepared, never committed
    w.write(change(2))  # waits for that commit, then takes the transaction over
    checkpoint(coord, w, complete=True)
    assert coord.carried == []
    # before the fix, on both brokers: 2 and then 1 sent again
    assert_in_order(kafka_server, topic, [1, 2])


def test_writer_waits_no_longer_than_the_checkpoint_timeout(kafka_server, parts):
    """An aborted checkpoint's committer never comes: the writer takes its transaction over
    once checkpoint.timeout has passed, not after a fixed 10 s (with a short timeout, every
    checkpoint until then timed out too and the pipeline stood still)."""
    topic, w, committer, coord = parts
    w.write(change(1))
    checkpoint(coord, w, complete=False)
    started = time.monotonic()
    w.write(change(2))
    assert time.monotonic() - started < 0.05 + 2  # the timeout, and the new producer
    checkpoint(coord, w, complete=True)
    assert_in_order(kafka_server, topic, [1, 2])


def test_two_aborted_checkpoints_in_a_row(kafka_server, parts):
    topic, w, committer, coord = parts
    for version in (1, 2):
        w.write(change(version))
        checkpoint(coord, w, complete=False)
    w.write(change(3))
    checkpoint(coord, w, complete=True)
    w.write(change(4))  # the committed transaction: no wait, no taking over
    checkpoint(coord, w, complete=True)
    assert coord.carried == []
    assert_in_order(kafka_server, topic, [1, 2, 3, 4])


def test_taken_over_transaction_waits_for_its_successor(kafka_server, parts):
    """A checkpoint completes while the transaction that took an aborted checkpoint's over
    is still open: the taken-over committable is "not yet" and commits with its successor."""
    topic, w, committer, coord = parts
    w.write(change(1))
    checkpoint(coord, w, complete=False)
    cid = barrier(coord, w)  # nothing written since: nothing to prepare
    w.write(change(2))  # checkpoint 1 not committed in time: taken over
    finish(coord, cid, complete=True)
    assert [c["checkpoint"] for c in coord.carried] == [1]
    w.write(change(3))
    checkpoint(coord, w, complete=True)
    assert coord.carried == []
    assert_in_order(kafka_server, topic, [1, 2, 3])


def test_crash_after_taking_over_resends_in_order(kafka_server, parts):
    """The process dies after a checkpoint that carries the taken-over transaction is stored,
    before its successor committed: recovery re-sends both write-ahead log segments in
    checkpoint order, each record once."""
    topic, w, committer, coord = parts
    w.write(change(1))
    checkpoint(coord, w, complete=False)
    w.write(change(2))
    p = coord.trigger({})
    committables = coord.carried + w.prepare_commit(p.checkpoint_id)
    assert [c["checkpoint"] for c in committables] == [1, 2]
    # the crash: the writer never hears checkpoint 2 is stored; its transaction stays open
    committer.recover(committables, CommitContext("p", 2, None, coord.storage.state_dir))
    assert_in_order(kafka_server, topic, [1, 2])
    committer.recover(committables, CommitContext("p", 2, None, coord.storage.state_dir))
    assert_in_order(kafka_server, topic, [1, 2])
