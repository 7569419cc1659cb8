"""Durable checkpoint storage.

A checkpoint is one JSON document (``_metadata``) in a folder of its own.  It is written to a
temporary file, fsynced and renamed into place, then the folder is fsynced: a checkpoint either
exists completely or not at all, whenever the process dies.  Layout under the storage root::

    checkpoints/chk-000012/_metadata     completed checkpoints, the last N retained
    savepoints/<name>/_metadata          savepoints, kept until the user deletes them
    state/                               files sinks keep next to checkpoints (write-ahead logs)
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from runtime.errors import CheckpointError

METADATA = "_metadata"
_CHK_RE = re.compile(r"^chk-(\d+)$")


@dataclass(frozen=True)
class CompletedCheckpoint:
    checkpoint_id: int
    path: str
    data: dict[str, Any]

    @property
    def savepoint(self) -> str | None:
        return self.data.get("savepoint")

    @property
    def timestamp_ms(self) -> int:
        return int(self.data.get("timestamp_ms", 0))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old file or the new."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def load_checkpoint(path: str) -> CompletedCheckpoint:
    """Load a checkpoint or savepoint folder (or its ``_metadata`` file)."""
    meta = path if os.path.basename(path) == METADATA else os.path.join(path, METADATA)
    try:
        with open(meta, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint there (missing {METADATA})") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta}: unreadable checkpoint: {exc}") from None
    if not isinstance(data, dict) or "checkpoint_id" not in data:
        raise CheckpointError(f"{meta}: not a checkpoint of this hub")
    return CompletedCheckpoint(int(data["checkpoint_id"]), os.path.dirname(meta), data)


class CheckpointStorage:
    """Checkpoints of one pipeline in a local folder."""

    def __init__(self, root: str, retain: int = 3):
        self.root = os.path.abspath(root)
        self.retain = max(1, retain)
        self.checkpoints_dir = os.path.join(self.root, "checkpoints")
        self.savepoints_dir = os.path.join(self.root, "savepoints")
        self.state_dir = os.path.join(self.root, "state")

    def ensure(self) -> None:
        """Create the folders; a one-line error when that is impossible."""
        for d in (self.checkpoints_dir, self.savepoints_dir, self.state_dir):
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(f"checkpoint.dir {self.root}: can't create {d}: "
                                      f"{exc.strerror}") from None
        if not os.access(self.checkpoints_dir, os.W_OK):
            raise CheckpointError(f"checkpoint.dir {self.root}: not writable")

    def store(self, checkpoint_id: int, data: dict[str, Any], savepoint: str | None = None) -> str:
        """Durably store a checkpoint (or a savepoint named ``savepoint``); returns its folder."""
        if savepoint:
            folder = os.path.join(self.savepoints_dir, savepoint)
        else:
            folder = os.path.join(self.checkpoints_dir, f"chk-{checkpoint_id:06d}")
        os.makedirs(folder, exist_ok=True)
        payload = json.dumps(data, separators=(",", ":")).encode()
        write_atomically(os.path.join(folder, METADATA), payload)
        if not savepoint:
            self._prune()
        return folder

    def completed_ids(self) -> list[int]:
        if not os.path.isdir(self.checkpoints_dir):
            return []
        ids = []
        for name in os.listdir(self.checkpoints_dir):
            m = _CHK_RE.match(name)
            if m and os.path.exists(os.path.join(self.checkpoints_dir, name, METADATA)):
                ids.append(int(m.group(1)))
        return sorted(ids)

    def latest(self) -> CompletedCheckpoint | None:
        """The newest completed checkpoint, or None."""
        ids = self.completed_ids()
        if not ids:
            return None
        return load_checkpoint(os.path.join(self.checkpoints_dir, f"chk-{ids[-1]:06d}"))

    def _prune(self) -> None:
        ids = self.completed_ids()
        for cid in ids[: -self.retain]:
            shutil.rmtree(os.path.join(self.checkpoints_dir, f"chk-{cid:06d}"), ignore_errors=True)
        # folders without metadata are checkpoints that never completed
        if os.path.isdir(self.checkpoints_dir):
            newest = ids[-1] if ids else 0
            for name in os.listdir(self.checkpoints_dir):
                m = _CHK_RE.match(name)
                if m and int(m.group(1)) < newest and int(m.group(1)) not in ids:
                    shutil.rmtree(os.path.join(self.checkpoints_dir, name), ignore_errors=True)

    def clear(self) -> None:
        """Forget every checkpoint (``--fresh``); savepoints stay."""
        shutil.rmtree(self.checkpoints_dir, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)
