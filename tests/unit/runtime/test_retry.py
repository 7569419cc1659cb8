import logging
import threading

import pytest

from runtime.errors import TerminalError, TransientError
from runtime.retry import Backoff, retry

log = logging.getLogger("test")
FAST = Backoff(initial_s=0.001, max_s=0.004, retries=3)


def test_delays_double_up_to_the_limit():
    b = Backoff(initial_s=0.5, max_s=30.0, retries=None)
    assert [b.delay(n) for n in (1, 2, 3, 7, 8)] == [0.5, 1.0, 2.0, 30.0, 30.0]
    assert not b.exhausted(10_000)
    assert Backoff(retries=2).exhausted(3) and not Backoff(retries=2).exhausted(2)


def test_transient_errors_are_retried_until_success():
    calls, dropped = [], []

    def fn():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("busy")
        return "ok"

    assert retry(fn, FAST, "bulk request", log, on_retry=dropped.append) == "ok"
    assert len(calls) == 3 and len(dropped) == 2


def test_retries_used_up_raise_a_transient_error_that_counts_them():
    def fn():
        raise TransientError("node down")

    with pytest.raises(TransientError, match=r"^bulk request failed after 3 retries: node down$"):
        retry(fn, FAST, "bulk request", log)


def test_terminal_errors_pass_at_once():
    calls = []

    def fn():
        calls.append(1)
        raise TerminalError("mapping conflict")

    with pytest.raises(TerminalError, match="mapping conflict"):
        retry(fn, FAST, "bulk request", log)
    assert calls == [1]


def test_a_stop_ends_the_wait_with_the_last_error():
    stop = threading.Event()
    stop.set()
    with pytest.raises(TransientError, match="^gone$"):
        retry(lambda: (_ for _ in ()).throw(TransientError("gone")),
              Backoff(initial_s=60, retries=None), "reconnect", log, stop=stop)
