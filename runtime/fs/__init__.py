"""One small filesystem interface over local folders and HDFS (through WebHDFS), for the
files sink, the files source and checkpoint storage.

Paths are strings: a local path, or a URL ``hdfs://namenode:9870/a/b`` (also ``webhdfs://``;
``swebhdfs://`` for HTTPS) whose port is the namenode's *WebHDFS HTTP* port.  URLs join and
split with ``os.path.join``/``os.path.dirname`` like local paths, so code that builds paths
does not care which filesystem it is on; it asks :func:`filesystem` for the right one.

Errors are ``OSError`` subclasses on both (``FileNotFoundError``, ``PermissionError``,
``FileExistsError``, ``ConnectionError``, ``TimeoutError``), so callers handle one family,
and :func:`os_error` is the one translation of them into transient and terminal errors.
"""
from __future__ import annotations

import errno
import os
import posixpath
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import HubError, TerminalError, TransientError

#: URL schemes served by :class:`runtime.fs.webhdfs.WebHdfsFileSystem`.
HDFS_SCHEMES = ("hdfs", "webhdfs", "swebhdfs")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# ``os.path.abspath("hdfs://nn:9870/x")`` gives ``<cwd>/hdfs:/nn:9870/x``: see url_from_abspath.
_MANGLED = re.compile(r"(?:^|/)((?:s?web)?hdfs):/+(?=[^/])")
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


#: Failures a retry can't fix: the path is forbidden or names the wrong kind of thing.
_PERMANENT = (PermissionError, NotADirectoryError, IsADirectoryError)
_PERMANENT_ERRNOS = frozenset({errno.EROFS, errno.ENAMETOOLONG})


def os_error(what: str, exc: OSError) -> HubError:
    """The one translation of a filesystem error (local or WebHDFS, both raise ``OSError``):
    permissions, a path through a file, a read-only filesystem or a name too long do not fix
    themselves (terminal); anything else (a full disk, a flaky mount, a namenode or datanode
    that is down or slow) may (transient).  ``what`` starts the line."""
    text = f"{what}: {exc.strerror or exc}"
    if isinstance(exc, _PERMANENT) or exc.errno in _PERMANENT_ERRNOS:
        return TerminalError(text)
    return TransientError(text)


def is_unreachable(exc: BaseException) -> bool:
    """The store did not answer (a connection refused or lost, a timeout): the failure is not
    the file's, for callers that treat a file they can't read as a bad record."""
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_url(path: str) -> bool:
    return _URL.match(path) is not None


def url_from_abspath(path: str) -> str:
    """Undo ``os.path.abspath`` on an HDFS URL (``<cwd>/hdfs:/nn:9870/x`` back to
    ``hdfs://nn:9870/x``); any other path is returned unchanged.  Configuration code that
    made a URL "absolute" as if it were a local path is thereby harmless."""
    if is_url(path):
        return path
    m = _MANGLED.search(path)
    if m is None:
        return path
    return f"{m.group(1)}://{path[m.end():]}"


_lock = threading.Lock()
_cache: dict[str, FileSystem] = {}


def filesystem(path: str) -> FileSystem:
    """The filesystem ``path`` lives on (one shared instance per namenode and user)."""
    m = _URL.match(path)
    if m is None:
        from runtime.fs.local import LOCAL

        return LOCAL
    scheme = m.group(1).lower()
    if scheme not in HDFS_SCHEMES:
        raise ValueError(f"{path}: unsupported URL scheme {scheme!r} (use a local path or "
                         f"{', '.join(s + '://' for s in HDFS_SCHEMES)})")
    from runtime.fs.webhdfs import WebHdfsFileSystem, authority

    key = authority(path)
    with _lock:
        fs = _cache.get(key)
        if fs is None:
            fs = _cache[key] = WebHdfsFileSystem(path)
    return fs


#: Characters of a name that are not safe in one path segment: separators, NUL and control
#: characters, ``%`` (the escape itself), ``:`` (invalid in HDFS names); and a leading ``.``
#: (``.``, ``..``, hidden names) or ``#`` (WebHDFS clients expand ``/#LATEST``).
_UNSAFE_IN_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\%:]|^[.#]")


def encode_segment(name: str) -> str:
    """``name`` (a database or table name: data, not a trusted path) as one path segment.

    Reversible (:func:`decode_segment`) percent-encoding of just the characters that are not
    safe in a segment: ``/``, ``\\``, NUL and other control characters, ``%`` and ``:``
    anywhere, and a leading ``.`` or ``#`` (so ``..``, ``.`` and hidden names can't occur).
    Everything else, unicode included, stays as it is, so ordinary names keep their layout:
    ``orders`` -> ``orders``, ``../x`` -> ``%2E.%2Fx``, ``a/b`` -> ``a%2Fb``, ``..`` ->
    ``%2E.``.  The result is never empty, ``.`` or ``..`` and holds no separator.
    """
    if not name:
        raise ValueError("an empty name can't be a path segment")
    return _UNSAFE_IN_SEGMENT.sub(lambda m: f"%{ord(m.group()):02X}", name)


def decode_segment(segment: str) -> str:
    """The name :func:`encode_segment` encoded as ``segment``."""
    from urllib.parse import unquote

    return unquote(segment, errors="strict")


def path_under(root: str, *parts: str) -> str:
    """``root`` joined with relative ``parts``; raises ValueError when the result is not
    strictly below ``root`` (:func:`is_below`; a part holding ``..`` or an absolute path):
    the last line of defence against writing outside a sink's folder."""
    path = os.path.join(root, *parts)
    if not is_below(path, root):
        raise ValueError(f"{path} is not below {root}")
    return path


def is_below(path: str, root: str) -> bool:
    """Whether ``path``, normalised (``..`` resolved, symbolic links not), is strictly below
    ``root``: both local paths, or both URLs of the same filesystem."""
    if is_url(root) or is_url(path):
        m_root, m_path = _URL.match(root), _URL.match(path)
        if m_root is None or m_path is None:
            return False
        base, sub = _split_url(root), _split_url(path)
        if base[0].lower() != sub[0].lower():  # another scheme, user or namenode
            return False
        return _strictly_below(posixpath.normpath(sub[1]), posixpath.normpath(base[1]), "/")
    return _strictly_below(os.path.normpath(os.path.abspath(path)),
                           os.path.normpath(os.path.abspath(root)), os.sep)


def _split_url(url: str) -> tuple[str, str]:
    """(``scheme://authority``, path) of a URL."""
    m = _URL.match(url)
    assert m is not None
    rest = url[m.end():]
    slash = rest.find("/")
    if slash < 0:
        return url, "/"
    return url[:m.end() + slash], rest[slash:]


def _strictly_below(path: str, root: str, sep: str) -> bool:
    return path != root and path.startswith(root.rstrip(sep) + sep)


def normpath(path: str) -> str:
    """An absolute, normalised local path, or the URL without a trailing slash."""
    if is_url(path):
        return path.rstrip("/") if path.count("/") > 3 else path
    return os.path.abspath(os.path.expanduser(path))
