"""Helpers shared by the throwaway servers."""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


def stand_ins() -> bool:
    """``HUB_STAND_INS=1``: run the suites whose real servers are Java programs (HBase,
    OpenSearch) on the small stand-ins in this folder instead, for a machine without Java or
    a quick run.  The default is the real servers."""
    return os.environ.get("HUB_STAND_INS", "0") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               proc: subprocess.Popen | None = None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    detail = ""
    if log:
        try:
            with open(log, errors="replace") as f:
                detail = "\n" + f.read()[-3000:]
        except OSError:
            pass
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s{detail}")


def find_binary(*patterns: str) -> str:
    for pattern in patterns:
        if "/" not in pattern and shutil.which(pattern):
            return shutil.which(pattern)  # type: ignore[return-value]
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    raise RuntimeError(f"none of {patterns} is installed: run scripts/test, which installs the "
                       "Debian packages the integration tests need")


def skip_unless_installed(what: str, *patterns: str) -> None:
    """Skip the calling test when ``what`` (found by ``patterns``, as :func:`find_binary`)
    is not installed here.  For tests that stop, restart or reset a server of their own: they
    start a throwaway one even when ``HUB_TEST_*`` names an external server (which they must
    not stop), so they are skipped only where the package can't be had."""
    import pytest

    try:
        find_binary(*patterns)
    except RuntimeError as exc:
        pytest.skip(f"needs {what} it can stop and start: {exc}")


def stop_server(proc: subprocess.Popen | None, folder: str) -> None:
    """Stop a throwaway server (politely, then by force) and remove its data folder."""
    stop_servers([proc], folder)


def stop_servers(procs: list[subprocess.Popen | None], folder: str) -> None:
    """Stop the processes of a throwaway server made of several (all asked at once, so they
    shut down side by side; each forced after 20 s) and remove its data folder."""
    running = [p for p in procs if p is not None]
    for proc in running:
        if proc.poll() is None:
            proc.terminate()
    for proc in running:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


def kill_now(proc: subprocess.Popen | None) -> None:
    """SIGKILL ``proc`` (kill -9, no shutdown of its own) and wait until it is gone; its data
    folder stays, for a restart on the same ports and folder."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(30)
    # the next start binds the same ports at once (the servers set SO_REUSEADDR); give the
    # kernel a moment to release them all the same
    time.sleep(0.2)


class RestartableServer(ABC):
    """A throwaway server of one process that tests kill -9 and start again on the same
    ports and data folder: a subclass keeps the process in ``proc`` and starts it with
    ``_launch()``."""

    proc: subprocess.Popen | None

    @abstractmethod
    def _launch(self) -> None:
        """Start the server process (into ``proc``) on the ports and folder it has."""

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone; the data folder stays."""
        assert self.proc is not None
        kill_now(self.proc)
        self.proc = None

    def restart(self) -> None:
        """Start the server again on the same ports and data folder (after :meth:`kill`)."""
        assert self.proc is None, "kill() first"
        self._launch()


_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()
#: how to stop the throwaway servers this process started, newest last
_stops: list[Callable[[], None]] = []


def stop_at_end(stop: Callable[[], None]) -> None:
    """Run ``stop`` when the test process ends: at the end of the test session
    (:func:`stop_all`, from ``tests/conftest.py``: pytest-xdist's workers leave without
    running atexit handlers) or at exit, whichever comes first."""
    if not _stops:
        atexit.register(stop_all)
    _stops.append(stop)


def stop_all() -> None:
    """Stop every throwaway server started so far, newest first (each once)."""
    while _stops:
        stop = _stops.pop()
        try:
            stop()
        except Exception:  # noqa: BLE001 - the others must still stop
            import logging

            logging.getLogger(__name__).exception("stopping a test server failed")


def shared_server(name: str, from_env: Callable[[], Any], throwaway: Callable[[], Any]) -> Any:
    """One server of a kind per test process: the one the environment names (docker-compose),
    else ``throwaway()`` started now and stopped at exit.  Fixtures and conformance cases use
    the same instance, so a test run never starts two of a kind."""
    with _shared_lock:
        if name not in _shared:
            server = from_env()
            if server is None:
                owner = throwaway()
                server = owner.start()
                stop_at_end(owner.stop)
            _shared[name] = server
        return _shared[name]
