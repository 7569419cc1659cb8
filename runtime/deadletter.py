"""The dead-letter destination for records that can't be read or written.

With ``errors.tolerance = "none"`` (the default) a bad record stops the pipeline: the error
propagates and the last checkpoint stays intact.  With ``"all"`` the record, the error and where
it came from are appended as one JSON line to a file under ``errors.dead-letter-path``, and the
pipeline goes on.  Writes are at-least-once (a record may be logged again after a restart).

A record that stops the pipeline is named by a :func:`record_id`, printed in the error line.  A
bad image stays in the source's history: every restart from the last checkpoint would meet it
again, even after the row was fixed at the source.  The way out that loses nothing is to list
that one id in ``skip`` (``errors.skip-records`` / ``hub run --skip-record ID``): that record
goes to the dead-letter destination and the pipeline goes on, every other bad record still stops
it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from runtime.errors import BadRecordError

if TYPE_CHECKING:
    from runtime.metrics import PipelineMetrics

#: What a record id looks like (what ``--skip-record`` accepts).
RECORD_ID_RE = re.compile(r"^[0-9a-f]{16}$")


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


def record_id(table: str, key: Any, record: Any) -> str:
    """A short id naming one record: its table, its key and a digest of its content.

    Stable across restarts (a replay of the same change image gives the same id) and different
    for a later image of the same key (the fix at the source is not skipped with it)."""
    body = json.dumps([table, _jsonable(key), _jsonable(record)], sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


class DeadLetterQueue:
    """Shared by all subtasks of a pipeline; thread-safe.  ``skip`` holds the ids
    (:func:`record_id`) of records the user sends to the dead letters even when the pipeline
    tolerates no bad records.  ``count`` (and ``metrics.dead_letters``, when given) counts the
    records sent to the dead letters."""

    def __init__(self, tolerance: str = "none", path: str | None = None, pipeline: str = "pipeline",
                 skip: frozenset[str] | set[str] = frozenset(),
                 metrics: PipelineMetrics | None = None):
        self.tolerance = tolerance
        self.path = path
        self.pipeline = pipeline
        self.skip = frozenset(skip)
        self.metrics = metrics
        self.count = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """A copy for a subtask in another process (Ray executor): its settings, its own lock
        and count; the driver's metrics stay behind: the executor brings the copy's ``count``
        back to the driver's queue (:meth:`counted`)."""
        state = dict(self.__dict__, metrics=None)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def counted(self, n: int) -> None:
        """``n`` more records were sent to the dead letters by a copy of this queue in another
        process (a subtask on Ray, which wrote them to the file): counted here, in ``count``
        and ``metrics.dead_letters``, as if written here."""
        with self._lock:
            self.count += n
            if self.metrics is not None:
                self.metrics.dead_letters += n

    @property
    def file(self) -> str | None:
        """The dead-letter file (JSON lines), None when records are only counted."""
        if self.path is None:
            return None
        return os.path.join(self.path, f"{self.pipeline}.deadletter.jsonl")

    @property
    def enabled(self) -> bool:
        return self.tolerance == "all"

    def report(self, error: BadRecordError, record: Any = None, origin: str = "",
               record_id: str | None = None) -> None:
        """Send ``record`` to the dead-letter destination, or raise ``error`` when the
        pipeline does not tolerate bad records and ``record_id`` is not in ``skip``.  The raised
        error names ``record_id`` and how to skip it."""
        if not self.enabled and (record_id is None or record_id not in self.skip):
            if record_id is None:
                raise error
            raise BadRecordError(f"{error} [record {record_id}: to send it to the dead letters "
                                 f"and go on, run again with --skip-record {record_id}]") from error
        entry = {"ts_ms": int(time.time() * 1000), "pipeline": self.pipeline, "origin": origin,
                 "error": str(error), "record": _jsonable(record)}
        if record_id is not None:
            entry["record_id"] = record_id
        line = json.dumps(entry)
        with self._lock:
            self.count += 1
            if self.metrics is not None:
                self.metrics.dead_letters += 1
            if self.path is None:
                return
            os.makedirs(self.path, exist_ok=True)
            with open(self.file, "a", encoding="utf-8") as f:  # type: ignore[arg-type]
                f.write(line + "\n")
