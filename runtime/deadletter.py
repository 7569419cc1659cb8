"""The dead-letter destination for records that can't be read or written.

With ``errors.tolerance = "none"`` (the default) a bad record stops the pipeline: the error
propagates and the last checkpoint stays intact.  With ``"all"`` the record, the error and where
it came from are appended as one JSON line to a file under ``errors.dead-letter-path``, and the
pipeline goes on.  Writes are at-least-once (a record may be logged again after a restart).
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

from runtime.errors import BadRecordError


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class DeadLetterQueue:
    """Shared by all subtasks of a pipeline; thread-safe."""

    def __init__(self, tolerance: str = "none", path: str | None = None, pipeline: str = "pipeline"):
        self.tolerance = tolerance
        self.path = path
        self.pipeline = pipeline
        self.count = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.tolerance == "all"

    def report(self, error: BadRecordError, record: Any = None, origin: str = "") -> None:
        """Send ``record`` to the dead-letter destination, or raise ``error`` when the
        pipeline does not tolerate bad records."""
        if not self.enabled:
            raise error
        line = json.dumps({"ts_ms": int(time.time() * 1000), "pipeline": self.pipeline,
                           "origin": origin, "error": str(error), "record": _jsonable(record)})
        with self._lock:
            self.count += 1
            if self.path is None:
                return
            os.makedirs(self.path, exist_ok=True)
            with open(os.path.join(self.path, f"{self.pipeline}.deadletter.jsonl"), "a",
                      encoding="utf-8") as f:
                f.write(line + "\n")
