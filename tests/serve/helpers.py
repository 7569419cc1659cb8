"""Pipelines and clients for the service's tests: datagen -> blackhole/files pipelines (no
servers), the API in-process (Starlette's TestClient), and ``hub serve`` as a subprocess."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

DATAGEN = """\
[pipeline]
name = "{name}"
parallelism = {parallelism}
[checkpoint]
interval = "{interval}"
[source]
type = "datagen"
tables = ["orders", "customers"]
rows-per-second = {rps}
{rows}
[sink]
type = "blackhole"
"""


def datagen_toml(name: str, rps: int = 2000, rows: int | None = None, parallelism: int = 2,
                 interval: str = "300ms") -> str:
    return DATAGEN.format(name=name, rps=rps, parallelism=parallelism, interval=interval,
                          rows="" if rows is None else f"rows = {rows}")


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Service:
    """``python -m hub serve`` in the background, its stderr in a file."""

    def __init__(self, state: str, log_path: str, env: dict | None = None,
                 listen: str = "127.0.0.1:0"):
        self.log_path = log_path
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--state", state, "--listen", listen],
            env={**os.environ, **(env or {})}, stdout=self.log, stderr=self.log, text=True)
        start = os.path.getsize(log_path)
        try:
            self.url = wait_for(lambda: self._url(start), 60, "the service to listen")
        except BaseException:
            self.kill()
            raise

    def _url(self, start: int) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"hub serve ended ({self.proc.returncode}): {self.text()}")
        with open(self.log_path) as f:
            f.seek(start)
            m = re.search(r"hub: serving on (http://\S+)", f.read())
        return m.group(1) if m else None

    def text(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self, timeout: float = 60) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.log.close()


def request(method: str, url: str, body: str | bytes | None = None,
            token: str | None = None, content_type: str = "application/toml"):
    """(status, decoded JSON or text) of one HTTP request (urllib: no client of the service's
    own)."""
    import json
    import urllib.error
    import urllib.request

    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            raw, status, ctype = r.read(), r.status, r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        raw, status, ctype = e.read(), e.code, e.headers.get("content-type", "")
    text = raw.decode()
    return status, (json.loads(text) if "json" in ctype and text else text)
