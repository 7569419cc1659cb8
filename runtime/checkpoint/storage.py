"""Durable checkpoint storage, in a local folder or on HDFS (:mod:`runtime.fs`).

A checkpoint is one JSON document (``_metadata``) in a folder of its own, written atomically:
locally to a temporary file, fsynced and renamed into place, then the folder is fsynced; on
HDFS to a temporary file (complete once the datanodes acknowledged its close) renamed into
place by the namenode.  Either way a checkpoint exists completely or not at all, whenever
the process dies.  Layout under the storage root::

    checkpoints/chk-000012/_metadata     completed checkpoints, the last N retained
    savepoints/<name>/_metadata          savepoints, kept until the user deletes them
    state/                               files sinks keep next to checkpoints (write-ahead logs)
"""
from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

from runtime.errors import CheckpointError, CheckpointUnreachableError
from runtime.fs import filesystem, is_unreachable, normpath, url_from_abspath
from runtime.fs.local import LOCAL

log = logging.getLogger("hub.checkpoint")

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


def write_atomically(path: str, payload: bytes) -> None:
    """Write ``payload`` to local ``path`` so that a crash leaves either the old file or the
    new."""
    LOCAL.write_atomically(path, payload)


def _root(path: str) -> str:
    # A URL the configuration made "absolute" as if it were a local path gets its form back.
    return normpath(url_from_abspath(path))


def load_checkpoint(path: str) -> CompletedCheckpoint:
    """Load a checkpoint or savepoint folder (or its ``_metadata`` file), local or on HDFS."""
    path = _root(path)
    meta = path if os.path.basename(path) == METADATA else os.path.join(path, METADATA)
    try:
        data = json.loads(filesystem(meta).read_bytes(meta))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint there (missing {METADATA})") from None
    except (ConnectionError, TimeoutError) as exc:
        raise CheckpointUnreachableError(f"{meta}: can't read the checkpoint now: {exc}") \
            from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta}: unreadable checkpoint: {exc}") from None
    if not isinstance(data, dict) or "checkpoint_id" not in data:
        raise CheckpointError(f"{meta}: not a checkpoint of this hub")
    return CompletedCheckpoint(int(data["checkpoint_id"]), os.path.dirname(meta), data)


class CheckpointStorage:
    """Checkpoints of one pipeline in a folder: a local path or an ``hdfs://`` URL.

    ``is_local`` tells whether ``root`` is a local folder (where file locks and control
    files can live next to the checkpoints)."""

    def __init__(self, root: str, retain: int = 3):
        self.root = _root(root)
        self.fs = filesystem(self.root)
        self.is_local = self.fs.is_local
        self.retain = max(1, retain)
        self.checkpoints_dir = os.path.join(self.root, "checkpoints")
        self.savepoints_dir = os.path.join(self.root, "savepoints")
        self.state_dir = os.path.join(self.root, "state")

    def ensure(self) -> None:
        """Create the folders; a one-line error when that is impossible: transient
        (:class:`CheckpointUnreachableError`) when the store does not answer now, as
        :func:`load_checkpoint` has it, else terminal."""
        for d in (self.checkpoints_dir, self.savepoints_dir, self.state_dir):
            try:
                self.fs.makedirs(d)
            except OSError as exc:
                cls = CheckpointUnreachableError if is_unreachable(exc) else CheckpointError
                raise cls(f"checkpoint.dir {self.root}: can't create {d}: "
                          f"{exc.strerror or exc}") from None
        if self.is_local:
            if not os.access(self.checkpoints_dir, os.W_OK):
                raise CheckpointError(f"checkpoint.dir {self.root}: not writable")
            return
        probe = os.path.join(self.checkpoints_dir, f".probe-{uuid.uuid4().hex}")
        try:
            self.fs.write_bytes(probe, b"")
            self.fs.remove(probe)
        except OSError as exc:
            cls = CheckpointUnreachableError if is_unreachable(exc) else CheckpointError
            raise cls(f"checkpoint.dir {self.root}: not writable: {exc}") from None

    def store(self, checkpoint_id: int, data: dict[str, Any], savepoint: str | None = None) -> str:
        """Durably store a checkpoint (or a savepoint named ``savepoint``); returns its folder."""
        if savepoint:
            folder = os.path.join(self.savepoints_dir, savepoint)
        else:
            folder = os.path.join(self.checkpoints_dir, f"chk-{checkpoint_id:06d}")
        self.fs.makedirs(folder)
        payload = json.dumps(data, separators=(",", ":")).encode()
        self.fs.write_atomically(os.path.join(folder, METADATA), payload)
        if not savepoint:
            self._prune()
        return folder

    def completed_ids(self) -> list[int]:
        ids = []
        for m in self._chk_folders():
            if self.fs.exists(os.path.join(self.checkpoints_dir, m.group(0), METADATA)):
                ids.append(int(m.group(1)))
        return sorted(ids)

    def latest(self) -> CompletedCheckpoint | None:
        """The newest completed checkpoint, or None."""
        ids = self.completed_ids()
        if not ids:
            return None
        return load_checkpoint(os.path.join(self.checkpoints_dir, f"chk-{ids[-1]:06d}"))

    def _chk_folders(self) -> list[re.Match[str]]:
        try:
            names = [e.name for e in self.fs.listdir(self.checkpoints_dir)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [m for m in map(_CHK_RE.match, names) if m]

    def _prune(self) -> None:
        ids = self.completed_ids()
        for cid in ids[: -self.retain]:
            self._prune_folder(os.path.join(self.checkpoints_dir, f"chk-{cid:06d}"))
        # folders without metadata are checkpoints that never completed
        newest = ids[-1] if ids else 0
        for m in self._chk_folders():
            if int(m.group(1)) < newest and int(m.group(1)) not in ids:
                self._prune_folder(os.path.join(self.checkpoints_dir, m.group(0)))

    def _delete(self, path: str) -> str | None:
        """Delete the folder ``path``; None when it is gone, else why it is not."""
        # The local filesystem's rmtree ignores errors: what is left is the test.
        try:
            self.fs.rmtree(path)
        except OSError as exc:
            return str(exc.strerror or exc)
        return "it is still there (permissions?)" if self.fs.exists(path) else None

    def _prune_folder(self, path: str) -> None:
        why = self._delete(path)
        if why is not None:
            # Pruning is tidying: the checkpoint just stored is complete, the next one tries
            # again.  Said, so that a disk filling up with old checkpoints is not a surprise.
            log.warning("checkpoint storage: could not delete the old checkpoint %s (%s); the "
                        "next checkpoint tries again", path, why)

    def clear(self) -> None:
        """Forget every checkpoint (``--fresh``); savepoints stay.  Raises
        :class:`CheckpointError` when a checkpoint can't be deleted: a fresh start that left
        one behind would resume from it at a later start (its id is above the new ones)."""
        for path in (self.checkpoints_dir, self.state_dir):
            why = self._delete(path)
            if why is not None:
                raise CheckpointError(f"--fresh: can't delete {path}: {why}; delete it by hand "
                                      f"and run again")
