"""The filesystem interface (:class:`FileSystem`), its listing entry and its output file:
below the package (which picks an implementation) and the implementations (local, WebHDFS),
so that none of them imports another in a circle."""
from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class FileStatus:
    """One entry of a listing: its full path, whether it is a folder, size and modification
    time (epoch milliseconds)."""

    path: str
    is_dir: bool
    size: int
    mtime_ms: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


class OutputFile(Protocol):
    """A new file being written (binary, sequential).  :meth:`close` completes it and returns
    once its bytes are durable (local: fsync; HDFS: the datanodes acknowledged the close);
    :meth:`abort` gives up on it and deletes what was written.  ``tell()`` is the number of
    bytes written so far."""

    def write(self, data: bytes) -> int: ...
    def tell(self) -> int: ...
    def flush(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class FileSystem(ABC):
    """A place files live.  Instances are shared by threads (every method is thread-safe).

    ``rename`` is the commit primitive: atomic on both (POSIX ``rename(2)``, the namenode's
    rename), and never replaces an existing destination file on HDFS (local rename does;
    callers name destinations uniquely so this never matters).
    """

    #: True for local folders (fsync semantics, file locks and ``os`` calls work on paths).
    is_local: bool = False

    @abstractmethod
    def create(self, path: str) -> OutputFile:
        """A new file at ``path`` (missing parent folders are created).  Raises
        FileExistsError on HDFS when it exists already."""

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace ``path`` with ``data`` (not atomic: see :meth:`write_atomically`)."""

    @abstractmethod
    def write_atomically(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` so that a crash at any moment leaves either the old file
        or the complete new one: a temporary file, made durable, renamed into place."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """The whole file."""

    @abstractmethod
    def local_copy(self, path: str) -> tuple[str, bool]:
        """A local path with the bytes of ``path`` and whether it is a temporary copy the
        caller must delete (False: it is the file itself)."""

    @abstractmethod
    def rename(self, src: str, dst: str) -> bool:
        """Atomically rename; False when ``src`` does not exist (or, on HDFS, when ``dst``
        exists).  Raises OSError on other failures."""

    @abstractmethod
    def status(self, path: str) -> FileStatus | None:
        """The file or folder at ``path``, or None when there is none."""

    @abstractmethod
    def listdir(self, path: str) -> list[FileStatus]:
        """The entries of a folder; FileNotFoundError when it does not exist."""

    @abstractmethod
    def makedirs(self, path: str) -> None:
        """Create a folder and its parents (no error when it exists)."""

    @abstractmethod
    def remove(self, path: str) -> bool:
        """Delete a file; False when there was none."""

    @abstractmethod
    def rmtree(self, path: str) -> None:
        """Delete a folder and everything below it (no error when it does not exist)."""

    def sync_dir(self, path: str) -> None:
        """Make the renames and creations in folder ``path`` durable (a no-op where the
        filesystem does that on its own)."""

    def exists(self, path: str) -> bool:
        return self.status(path) is not None

    def isdir(self, path: str) -> bool:
        st = self.status(path)
        return st is not None and st.is_dir

    def walk(self, root: str) -> Iterator[tuple[str, list[FileStatus], list[FileStatus]]]:
        """``os.walk`` for any filesystem: (folder, sub-folders, files), top down; the
        caller may prune the sub-folder list.  A missing root yields nothing."""
        try:
            entries = self.listdir(root)
        except FileNotFoundError:
            return
        dirs = [e for e in entries if e.is_dir]
        yield root, dirs, [e for e in entries if not e.is_dir]
        for d in dirs:
            yield from self.walk(d.path)

    def glob(self, pattern: str) -> list[FileStatus]:
        """The files and folders matching ``pattern`` (``*``, ``?``, ``[...]`` within a name,
        ``**`` across folders), sorted by path."""
        parts = pattern.split("/")
        first = next((i for i, p in enumerate(parts) if _MAGIC.search(p)), len(parts))
        if first == len(parts):
            st = self.status(pattern)
            return [st] if st is not None else []
        base = "/".join(parts[:first]) or "/"
        rx = re.compile(_translate(parts[first:]))
        out = []
        for _folder, dirs, files in self.walk(base):
            for e in dirs + files:
                if rx.fullmatch(e.path[len(base):].lstrip("/")):
                    out.append(e)
        return sorted(out, key=lambda e: e.path)


def _translate(parts: list[str]) -> str:
    """A regex for the relative path matched by glob segments ``parts``."""
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        rx = ""
        j = 0
        while j < len(part):
            c = part[j]
            if c == "*":
                rx += "[^/]*"
            elif c == "?":
                rx += "[^/]"
            elif c == "[":
                end = part.find("]", j + 2)
                if end < 0:
                    rx += re.escape(c)
                else:
                    body = part[j + 1:end]
                    rx += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                    j = end
            else:
                rx += re.escape(c)
            j += 1
        out.append(rx if last else rx + "/")
    return "".join(out)
