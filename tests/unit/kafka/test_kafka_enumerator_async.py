"""The Kafka enumerator's discovery runs through ``call_async``: what it does while a discovery
is on its way (no broker needed: the discovery's result is handed in as the I/O thread would)."""
from __future__ import annotations

from sources.kafka.config import KafkaSourceConfig
from sources.kafka.enumerator import KafkaEnumerator, owner
from sources.kafka.split import KafkaPartitionSplit


class DeferringContext:
    """An enumerator context whose ``call_async`` keeps the call for the test to finish."""

    parallelism = 2

    def __init__(self):
        self.calls, self.assigned, self.no_more = [], {}, []

    def call_async(self, fn, handler):
        self.calls.append((fn, handler))

    def assign_splits(self, assignment):
        for subtask, splits in assignment.items():
            self.assigned.setdefault(subtask, []).extend(splits)

    def signal_no_more_splits(self, subtask):
        self.no_more.append(subtask)

    def registered_readers(self):
        return [0, 1]

    def schedule(self, fn, interval_s):
        pass


def enumerator(ctx, state=None):
    config = KafkaSourceConfig.model_validate({"bootstrap-servers": "h:1", "topics": ["t"],
                                               "bounded": "latest-offset"})
    return KafkaEnumerator(ctx, config, state)


def splits(n=2):
    return [KafkaPartitionSplit(KafkaPartitionSplit.id_of("t", p), "t", p, offset=0,
                                stop_offset=5) for p in range(n)]


def test_a_bounded_source_ends_no_reader_before_the_first_discovery():
    ctx = DeferringContext()
    e = enumerator(ctx)
    e._discover()
    e.add_reader(0)
    e.add_reader(1)
    assert ctx.no_more == [] and len(ctx.calls) == 1
    e._discover()  # the timer while a discovery is on its way: not doubled
    assert len(ctx.calls) == 1
    _, handler = ctx.calls[0]
    handler(splits(), None)  # the result, in the control thread
    got = {s.split_id for ss in ctx.assigned.values() for s in ss}
    assert got == {"t:0", "t:1"}
    assert sorted(ctx.no_more) == [0, 1]  # now each reader has all it will get
    assert all(owner("t", s.partition, 2) == sub for sub, ss in ctx.assigned.items() for s in ss)


def test_a_checkpoint_during_the_first_discovery_keeps_the_startup_mode_for_the_restore():
    ctx = DeferringContext()
    e = enumerator(ctx)
    e._discover()
    state = e.snapshot_state(1)
    assert state["first_done"] is False
    assert enumerator(DeferringContext(), state).first  # the startup mode still applies
    _, handler = ctx.calls[0]
    handler(splits(), None)
    assert enumerator(DeferringContext(), e.snapshot_state(2)).first is False
    # a checkpoint of an older version (no key) had its first discovery done
    assert enumerator(DeferringContext(), {"assigned": [], "pending": []}).first is False


def test_errors_of_the_first_discovery_fail_the_job_later_ones_are_logged(caplog):
    ctx = DeferringContext()
    e = enumerator(ctx)
    e._discover()
    _, handler = ctx.calls.pop()
    boom = ConnectionError("broker down")
    try:
        handler(None, boom)
    except ConnectionError as exc:
        assert exc is boom
    else:
        raise AssertionError("the first discovery's error must end the job")
    e.first = False
    e._discover()
    _, handler = ctx.calls.pop()
    handler(None, ConnectionError("broker down again"))
    assert "partition discovery failed" in caplog.text and not e.discovering
