"""Talking to a running pipeline through its checkpoint folder.

A running pipeline holds an exclusive lock on ``<checkpoint dir>/_lock`` (so two runs of one
pipeline can't share state) and watches ``<checkpoint dir>/control/`` for requests that
``hub savepoint`` drops there: ``<name>.request`` -> the pipeline takes the savepoint and writes
``<name>.done`` with the outcome.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable

from runtime.checkpoint.storage import write_atomically
from runtime.errors import HubError

log = logging.getLogger("hub")

POLL_S = 0.2


class PipelineLock:
    """Exclusive per-pipeline lock; released when the process ends, even by kill -9."""

    def __init__(self, root: str):
        self.path = os.path.join(root, "_lock")
        self._fd: int | None = None

    def acquire(self, name: str) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HubError(f"pipeline {name!r} is already running (pid {owner}, lock "
                           f"{self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_running(root: str) -> bool:
    path = os.path.join(root, "_lock")
    if not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class ControlWatcher(threading.Thread):
    """Serves savepoint requests of ``hub savepoint`` for a running executor."""

    def __init__(self, root: str, request: Callable[[str, Callable[[str, bool], None], bool], None]):
        super().__init__(name="control", daemon=True)
        self.dir = os.path.join(root, "control")
        self.request = request
        self.stopped = threading.Event()

    def run(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        while not self.stopped.wait(POLL_S):
            for name in sorted(os.listdir(self.dir)):
                if not name.endswith(".request"):
                    continue
                path = os.path.join(self.dir, name)
                try:
                    with open(path) as f:
                        req = json.load(f)
                    os.remove(path)
                except FileNotFoundError:
                    continue  # gone between listing and reading: nothing to serve
                except (OSError, ValueError) as exc:
                    self._drop(path, f"unreadable: {exc}")
                    continue
                sp = req.get("name") if isinstance(req, dict) else None
                if not isinstance(sp, str) or not sp:
                    self._drop(path, "no savepoint name in it")
                    continue
                done = os.path.join(self.dir, f"{sp}.done")

                def reply(result: str, ok: bool, done: str = done) -> None:
                    write_atomically(done, json.dumps({"ok": ok, "result": result}).encode())

                self.request(sp, reply, bool(req.get("stop")))


    @staticmethod
    def _drop(path: str, why: str) -> None:
        """A request file nobody can serve: said once and removed, not retried every poll."""
        log.warning("control: ignoring the savepoint request %s (%s)", path, why)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass  # already gone: what we wanted
        except OSError as exc:
            log.warning("control: could not delete %s: %s", path, exc)


def request_savepoint(root: str, pipeline: str, name: str, stop: bool, timeout_s: float) -> str:
    """Ask the running pipeline for a savepoint and wait for it; returns its folder."""
    if not is_running(root):
        raise HubError(f"pipeline {pipeline!r} is not running (nothing holds {root}/_lock); "
                       f"start it with  hub run  (use --stop-with-savepoint NAME to end it with one)")
    d = os.path.join(root, "control")
    os.makedirs(d, exist_ok=True)
    done = os.path.join(d, f"{name}.done")
    if os.path.exists(done):
        os.remove(done)
    write_atomically(os.path.join(d, f"{name}.request"),
                     json.dumps({"name": name, "stop": stop}).encode())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(done):
            with open(done) as f:
                out = json.load(f)
            os.remove(done)
            if not out["ok"]:
                raise HubError(f"savepoint {name!r} failed: {out['result']}")
            return out["result"]
        if not is_running(root):
            raise HubError(f"pipeline {pipeline!r} stopped before savepoint {name!r} completed")
        time.sleep(POLL_S)
    raise HubError(f"savepoint {name!r} not completed within {timeout_s:.0f}s")
