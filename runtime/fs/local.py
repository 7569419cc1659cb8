"""The local filesystem: plain ``os`` calls, made durable with fsync."""
from __future__ import annotations

import glob
import os
import shutil

from runtime.fs.base import FileStatus, FileSystem


def fsync_path(path: str) -> None:
    """fsync a file, or a folder (so renames and creations in it survive a power loss)."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalOutput:
    """A local file being written.  ``write`` and ``tell`` are the buffered file's own
    methods (no wrapper frame per call: formats write often); :meth:`close` flushes and
    fsyncs before closing."""

    __slots__ = ("path", "_file", "write", "tell", "flush")

    def __init__(self, path: str):
        try:
            f = open(path, "wb", buffering=1 << 20)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            f = open(path, "wb", buffering=1 << 20)
        self.path = path
        self._file = f
        self.write = f.write
        self.tell = f.tell
        self.flush = f.flush

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


class LocalFileSystem(FileSystem):
    """Local folders.  :meth:`write_atomically` is temp file, fsync, ``os.replace``, fsync of
    the folder; :meth:`create` fsyncs at close."""

    is_local = True

    def create(self, path: str) -> LocalOutput:
        return LocalOutput(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)

    def write_atomically(self, path: str, data: bytes) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(os.path.dirname(path))

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def local_copy(self, path: str) -> tuple[str, bool]:
        return path, False

    def rename(self, src: str, dst: str) -> bool:
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            return False
        return True

    def status(self, path: str) -> FileStatus | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStatus(path, os.path.isdir(path), st.st_size, st.st_mtime_ns // 1_000_000)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[FileStatus]:
        out = []
        with os.scandir(path) as it:
            for e in it:
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue  # deleted while listing
                out.append(FileStatus(e.path, e.is_dir(), st.st_size, st.st_mtime_ns // 1_000_000))
        return out

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> bool:
        try:
            os.remove(path)
        except FileNotFoundError:
            return False
        return True

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def sync_dir(self, path: str) -> None:
        try:
            fsync_path(path)
        except OSError:
            pass  # not every filesystem lets a folder be opened or synced; the rename happened

    def glob(self, pattern: str) -> list[FileStatus]:
        found = (self.status(p) for p in sorted(glob.glob(pattern, recursive=True)))
        return [st for st in found if st is not None]


LOCAL = LocalFileSystem()
