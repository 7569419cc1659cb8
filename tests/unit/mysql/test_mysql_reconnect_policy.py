"""The binlog reconnect loop's waits come from the runtime's one retry policy, unchanged:
0.5 s doubling up to 30 s; connect-max-retries reconnects in a row (0: no limit)."""
from __future__ import annotations

from runtime.retry import Backoff
from sources.mysql.binlog import reconnect_policy


def test_waits_double_from_half_a_second_up_to_30s():
    p = reconnect_policy(0)
    assert isinstance(p, Backoff)
    assert [p.delay(a) for a in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_gives_up_after_connect_max_retries_in_a_row():
    p = reconnect_policy(3)
    assert [p.exhausted(a) for a in (1, 2, 3, 4)] == [False, False, False, True]


def test_zero_means_never_give_up():
    assert not reconnect_policy(0).exhausted(10_000)
