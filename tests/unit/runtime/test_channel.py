import threading
import time

import pytest

from runtime.channel import ChannelClosed, InputGate


def test_fifo_per_channel():
    gate = InputGate(1, capacity=4)
    for i in range(4):
        gate.put(0, i)
    assert [gate.get(0.1)[1] for _ in range(4)] == [0, 1, 2, 3]
    assert gate.get(0.01) is None


def test_full_channel_blocks_producer_until_consumed():
    gate = InputGate(1, capacity=2)
    gate.put(0, "a")
    gate.put(0, "b")
    done = threading.Event()

    def producer():
        gate.put(0, "c")
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert gate.waited_s == 0.0
    assert not done.wait(0.2), "the third put must wait: the channel is full"
    assert gate.get(0.1) == (0, "a")
    assert done.wait(1.0)
    t.join()
    assert gate.waited_s >= 0.2, "the wait counts as backpressure"


def test_blocked_channel_is_held_back_for_alignment():
    gate = InputGate(2, capacity=8)
    gate.put(0, "barrier-0")
    gate.put(0, "after-barrier-0")
    gate.put(1, "x")
    assert gate.get(0.1) == (0, "barrier-0")
    gate.block(0)
    assert gate.get(0.1) == (1, "x")
    assert gate.get(0.05) is None, "channel 0 is blocked"
    gate.unblock_all()
    assert gate.get(0.1) == (0, "after-barrier-0")


def test_round_robin_does_not_starve():
    gate = InputGate(2, capacity=100)
    for i in range(10):
        gate.put(0, ("a", i))
        gate.put(1, ("b", i))
    first = [gate.get(0.1)[0] for _ in range(4)]
    assert set(first) == {0, 1}


def test_close_wakes_waiters():
    gate = InputGate(1, capacity=1)
    gate.put(0, 1)
    errors = []

    def producer():
        try:
            gate.put(0, 2)
        except ChannelClosed:
            errors.append("closed")

    t = threading.Thread(target=producer)
    t.start()
    time.sleep(0.05)
    gate.close()
    t.join(1)
    assert errors == ["closed"]
    with pytest.raises(ChannelClosed):
        gate.get(0.1)


# -- the byte budget -------------------------------------------------------------------------
def _batch(n: int, arrow: bool = True):
    import pyarrow as pa

    from runtime.batch import ChangeBatch
    from tests.conformance.harness import ORDERS

    rows = [(i, "x" * 100, None) for i in range(n)]
    batch = ChangeBatch(ORDERS, "c" * n, rows=rows)
    if arrow:
        batch = ChangeBatch(ORDERS, "c" * n, arrow=batch.arrow())
        assert isinstance(batch.arrow(), pa.RecordBatch)
    return batch


def test_nbytes_is_the_arrow_size_and_control_elements_weigh_nothing():
    from runtime.channel import nbytes
    from runtime.elements import END_OF_INPUT, Barrier, Watermark

    batch = _batch(1000)
    assert nbytes(batch) == batch.arrow().nbytes > 100_000
    rows_only = _batch(1000, arrow=False)
    assert 100_000 < nbytes(rows_only) < 200_000  # an estimate from the first row
    assert not rows_only.has_arrow  # measuring did not convert it
    assert nbytes(Barrier(1)) == nbytes(Watermark(5)) == nbytes(END_OF_INPUT) == 0


def test_a_channel_full_by_bytes_blocks_its_producer_below_the_count():
    big = _batch(1000)  # ~130 KB
    gate = InputGate(1, capacity=100, max_bytes=int(2.5 * big.arrow().nbytes))
    gate.put(0, big)
    gate.put(0, big)
    assert gate.queued_bytes() == 2 * big.arrow().nbytes
    done = threading.Event()

    def producer():
        gate.put(0, big)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.2), "the third batch would exceed the byte budget: it must wait"
    assert gate.get(0.1)[1] is big
    assert done.wait(1.0)
    t.join()
    assert gate.queued() == 2 and gate.queued_bytes() == 2 * big.arrow().nbytes


def test_an_oversized_batch_passes_an_empty_channel():
    big = _batch(1000)
    gate = InputGate(1, capacity=4, max_bytes=10)
    gate.put(0, big)  # empty channel: taken, however large
    assert gate.get(0.1)[1] is big
    assert gate.queued_bytes() == 0


def test_without_a_byte_budget_only_the_count_bounds():
    big = _batch(1000)
    gate = InputGate(1, capacity=3)
    for _ in range(3):
        gate.put(0, big)
    assert gate.queued() == 3 and gate.queued_bytes() == 0
