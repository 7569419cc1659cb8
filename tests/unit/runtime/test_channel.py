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
    assert not done.wait(0.2), "the third put must wait: the channel is full"
    assert gate.get(0.1) == (0, "a")
    assert done.wait(1.0)
    t.join()


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
