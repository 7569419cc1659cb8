"""HDFS through WebHDFS (the namenode's REST API), with the ``hdfs`` package (extra ``hdfs``).

``hdfs://[user@]namenode:9870/path``: the port is the namenode's HTTP port (9870 on Hadoop 3,
50070 on Hadoop 2; 9870 when omitted); ``swebhdfs://`` uses HTTPS.  The user is the URL's,
else ``$HADOOP_USER_NAME``, else the login name (simple authentication, as Hadoop clients).

Files are written as they are produced: :class:`HdfsOutput` streams the bytes of a part file
to the datanode in one chunked HTTP request, from a thread, through a small bounded queue, so
formatting the next bytes overlaps sending the last and memory stays bounded.
"""
from __future__ import annotations

import getpass
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from runtime.errors import MissingExtraError
from runtime.fs.base import FileStatus, FileSystem

log = logging.getLogger(__name__)

DEFAULT_PORT = 9870
#: Bytes per chunk sent to the datanode, and how many chunks may wait to be sent.
CHUNK = 1 << 20
QUEUE_CHUNKS = 8
#: Seconds an HTTP request may stall before it fails (and the runtime retries).
TIMEOUT_S = 60.0

_EXCEPTIONS: dict[str, type[OSError]] = {
    "FileNotFoundException": FileNotFoundError,
    "AccessControlException": PermissionError,
    "SecurityException": PermissionError,
    "FileAlreadyExistsException": FileExistsError,
}


def authority(url: str) -> str:
    """``scheme://user@host:port`` of an HDFS URL: what identifies its filesystem."""
    u = urlsplit(url)
    user = u.username or os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
    return f"{u.scheme.lower()}://{user}@{u.hostname}:{u.port or DEFAULT_PORT}"


def _import_hdfs() -> Any:
    try:
        import hdfs
    except ImportError:
        raise MissingExtraError("hdfs", "hdfs") from None
    return hdfs


def _unreachable(exc: Exception, namenode: str) -> str:
    """Which server could not be reached and why, in a few words: ``the HDFS DataNode at
    127.0.0.1:9864 can't be reached (connection refused)``.  A request to anything but the
    namenode's address went where the namenode redirected it: a DataNode."""
    request = getattr(exc, "request", None)
    where = urlsplit(request.url).netloc if request is not None and request.url else ""
    role = "NameNode" if not where or where == urlsplit(namenode).netloc else "DataNode"
    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("Connection reset", "connection reset"),
                           ("Connection aborted", "connection lost"),
                           ("timed out", "timed out")):
        if needle in text:
            break
    else:
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
    at = f" at {where}" if where else f" at {urlsplit(namenode).netloc}"
    return f"the HDFS {role}{at} can't be reached ({reason})"


@contextmanager
def _os_errors(what: str, namenode: str = "") -> Iterator[None]:
    """HdfsError and requests' connection errors as the OSError subclass they mean; a
    connection error names the server (NameNode or DataNode, ``namenode`` tells them apart)
    the pipeline waits for."""
    import requests

    hdfs = _import_hdfs()
    try:
        yield
    except hdfs.HdfsError as exc:
        cls = _EXCEPTIONS.get(getattr(exc, "exception", None) or "", OSError)
        raise cls(f"{what}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    except requests.Timeout as exc:
        raise TimeoutError(f"{what}: {_unreachable(exc, namenode)}") from None
    except requests.RequestException as exc:
        raise ConnectionError(f"{what}: {_unreachable(exc, namenode)}") from None


class WebHdfsFileSystem(FileSystem):
    """One namenode and user.  Each thread gets its own client (HTTP session), so writers of
    several subtasks and the committer never share a connection."""

    def __init__(self, url: str):
        _import_hdfs()
        u = urlsplit(url)
        self.prefix = f"{u.scheme}://{u.netloc}"
        http = "https" if u.scheme.lower() == "swebhdfs" else "http"
        self.http_url = f"{http}://{u.hostname}:{u.port or DEFAULT_PORT}"
        self.user = authority(url).split("://", 1)[1].rsplit("@", 1)[0]
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"WebHdfsFileSystem({self.http_url}, user={self.user})"

    @property
    def client(self) -> Any:
        c = getattr(self._local, "client", None)
        if c is None:
            hdfs = _import_hdfs()
            c = self._local.client = hdfs.InsecureClient(self.http_url, user=self.user,
                                                         timeout=TIMEOUT_S)
        return c

    def hdfs_path(self, path: str) -> str:
        """The path part of a URL of this filesystem (``/`` for the root)."""
        if not path.startswith(self.prefix):
            raise ValueError(f"{path} is not on {self.prefix}")
        return path[len(self.prefix):] or "/"

    # -- FileSystem ---------------------------------------------------------------------------
    def create(self, path: str) -> HdfsOutput:
        return HdfsOutput(self, path)

    def write_bytes(self, path: str, data: bytes) -> None:
        with _os_errors(f"writing {path}", self.http_url):
            self.client.write(self.hdfs_path(path), data=data, overwrite=True)

    def write_atomically(self, path: str, data: bytes) -> None:
        # HDFS has no atomic replace over WebHDFS: a new name renames in one step; an
        # existing file (a savepoint taken twice under one name) is deleted first, so a crash
        # between the two leaves the complete temporary file and no target.
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        self.write_bytes(tmp, data)
        if not self.rename(tmp, path):
            self.remove(path)
            if not self.rename(tmp, path):
                raise OSError(f"renaming {tmp} to {path} failed")

    def read_bytes(self, path: str) -> bytes:
        with _os_errors(f"reading {path}", self.http_url), \
                self.client.read(self.hdfs_path(path)) as r:
            return r.read()

    def local_copy(self, path: str) -> tuple[str, bool]:
        fd, local = tempfile.mkstemp(prefix="hub-hdfs-", suffix="-" + os.path.basename(path))
        try:
            with os.fdopen(fd, "wb") as out, _os_errors(f"reading {path}", self.http_url), \
                    self.client.read(self.hdfs_path(path), chunk_size=CHUNK) as chunks:
                for chunk in chunks:
                    out.write(chunk)
        except BaseException:
            os.remove(local)
            raise
        return local, True

    def rename(self, src: str, dst: str) -> bool:
        hdfs = _import_hdfs()
        with _os_errors(f"renaming {src} to {dst}", self.http_url):
            try:
                self.client.rename(self.hdfs_path(src), self.hdfs_path(dst))
            except hdfs.HdfsError as exc:
                if exc.exception is None:
                    return False  # the namenode said false: source missing or target present
                raise
        return True

    def status(self, path: str) -> FileStatus | None:
        with _os_errors(f"status of {path}", self.http_url):
            st = self.client.status(self.hdfs_path(path), strict=False)
        return None if st is None else self._status(path, st)

    def listdir(self, path: str) -> list[FileStatus]:
        with _os_errors(f"listing {path}", self.http_url):
            entries = self.client.list(self.hdfs_path(path), status=True)
        base = path.rstrip("/")
        return [self._status(f"{base}/{name}", st) for name, st in entries]

    def makedirs(self, path: str) -> None:
        with _os_errors(f"creating folder {path}", self.http_url):
            self.client.makedirs(self.hdfs_path(path))

    def remove(self, path: str) -> bool:
        with _os_errors(f"deleting {path}", self.http_url):
            return bool(self.client.delete(self.hdfs_path(path)))

    def rmtree(self, path: str) -> None:
        with _os_errors(f"deleting {path}", self.http_url):
            self.client.delete(self.hdfs_path(path), recursive=True)

    @staticmethod
    def _status(path: str, st: dict[str, Any]) -> FileStatus:
        return FileStatus(path, st.get("type") == "DIRECTORY", int(st.get("length", 0)),
                          int(st.get("modificationTime", 0)))


class HdfsOutput:
    """A file on HDFS being written: CREATE at the namenode, then the bytes streamed to the
    datanode it redirects to (one chunked PUT, sent by a thread).  :meth:`close` returns once
    the datanode answered, i.e. the file is closed and its blocks acknowledged."""

    def __init__(self, fs: WebHdfsFileSystem, path: str):
        self.path = path
        self._fs = fs
        self._buf = bytearray()
        self._pos = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._foreign = False
        self._closed = False
        self._thread = threading.Thread(target=self._upload, name="hdfs-upload", daemon=True)
        self._thread.start()

    def _upload(self) -> None:
        try:
            with _os_errors(f"writing {self.path}", self._fs.http_url):
                self._fs.client.write(self._fs.hdfs_path(self.path), data=self._chunks(),
                                      overwrite=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
            self._error = exc
            # CREATE refused: the file there is somebody else's, abort() must not delete it
            self._foreign = isinstance(exc, FileExistsError)
            while True:  # unblock a writer waiting for room
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def _put(self, chunk: bytes | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise OSError(f"writing {self.path}: upload ended early") from self._error

    def write(self, data: bytes) -> int:
        n = len(data)
        self._pos += n
        if not self._buf and n >= CHUNK and isinstance(data, bytes):
            self._put(data)  # a whole chunk (formats that buffer write these): no copies
            return n
        self._buf += data
        if len(self._buf) >= CHUNK:
            self._put(bytes(self._buf))
            self._buf.clear()
        return n

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        """Nothing to do: bytes leave in chunks; :meth:`close` sends the rest."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop sending and delete the file (best effort: recovery removes strays too); a
        file that existed before (CREATE refused it) is left alone."""
        if not self._closed:
            self._closed = True
            self._buf.clear()
            try:
                self._put(None)
            except OSError:
                pass
            self._thread.join(TIMEOUT_S)
        if self._foreign:
            return
        try:
            self._fs.remove(self.path)
        except OSError as exc:
            log.warning("hdfs: could not delete aborted file %s: %s", self.path, exc)
