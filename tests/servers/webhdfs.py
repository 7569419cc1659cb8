"""WebHDFS for the tests: :func:`shared` is a real HDFS (tests/servers/hdfs.py: Apache
Hadoop's NameNode and DataNode from Maven Central, started on free ports), or, with
``HUB_TEST_WEBHDFS=http://127.0.0.1:9870``, docker-compose's namenode (its RPC address, for
``hdfs://`` clients other than WebHDFS, in ``HUB_TEST_HDFS_RPC``, e.g. ``hdfs://127.0.0.1:8020``).

The rest of this module is a WebHDFS TEST SERVER of our own (not Hadoop), no longer in the
default suite: the REST protocol of a namenode and datanode over a local folder, in Python.  It
is kept for one thing a real cluster can't do: run where no Java is installed
(``python -m tests.servers.webhdfs --root DIR [--port N]``, then ``HUB_TEST_WEBHDFS`` pointing
at it).  It has no leases, permissions, replication or safe mode.

What it speaks, as Hadoop 3 does (``/webhdfs/v1/<path>?op=...``):

* two-step writes and reads: ``CREATE`` (PUT), ``APPEND`` (POST) and ``OPEN`` (GET) at the
  namenode answer ``307`` with a ``Location`` on the *datanode* port (a second listener),
  where the bytes go (chunked or sized bodies) or come from (``offset``, ``length``);
* ``RENAME`` (``{"boolean": false}`` when the source is missing, the target file exists or its
  folder is missing; into a folder when the target is one), ``DELETE`` (``recursive``),
  ``LISTSTATUS``, ``GETFILESTATUS``, ``MKDIRS``;
* errors as ``{"RemoteException": {"exception", "javaClassName", "message"}}`` with the
  status codes of Hadoop (404 FileNotFoundException, 403 FileAlreadyExistsException ...).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

from tests.servers.common import free_port, shared_server, stop_server, wait_until
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

PREFIX = "/webhdfs/v1"
_JAVA = {"FileNotFoundException": "java.io.FileNotFoundException",
         "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
         "PathIsNotEmptyDirectoryException":
             "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
         "IllegalArgumentException": "java.lang.IllegalArgumentException",
         "UnsupportedOperationException": "java.lang.UnsupportedOperationException"}


class _Fail(Exception):
    def __init__(self, status: int, exception: str, message: str):
        super().__init__(message)
        self.status, self.exception, self.message = status, exception, message


class _Store:
    """The namespace: HDFS paths under a local folder; renames under one lock (atomic, as
    the namenode's)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.lock = threading.Lock()

    def local(self, path: str) -> str:
        p = os.path.normpath(os.path.join(self.root, path.lstrip("/")))
        if p != self.root and not p.startswith(self.root + os.sep):
            raise _Fail(400, "IllegalArgumentException", f"invalid path {path}")
        return p

    def status(self, path: str, suffix: str) -> dict[str, Any]:
        st = os.stat(path)
        is_dir = os.path.isdir(path)
        return {"accessTime": int(st.st_atime * 1000), "blockSize": 0 if is_dir else 134217728,
                "childrenNum": len(os.listdir(path)) if is_dir else 0, "fileId": st.st_ino,
                "group": "supergroup", "length": 0 if is_dir else st.st_size,
                "modificationTime": st.st_mtime_ns // 1_000_000, "owner": "hub",
                "pathSuffix": suffix, "permission": "755" if is_dir else "644",
                "replication": 0 if is_dir else 1, "storagePolicy": 0,
                "type": "DIRECTORY" if is_dir else "FILE"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of a namenode
    # Headers and body leave in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (40 ms) on a kept-alive connection: a stall Hadoop's Jetty does not have.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing -----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if not url.path.startswith(PREFIX):
                raise _Fail(404, "UnsupportedOperationException", f"no such resource {url.path}")
            path = unquote(url.path[len(PREFIX):]) or "/"
            op = params.get("op", "").upper()
            handler = getattr(self, f"_{method.lower()}_{op.lower()}", None)
            if handler is None:
                raise _Fail(400, "UnsupportedOperationException",
                            f"{op or 'no op'} is not supported by {method}")
            handler(path, params)
        except _Fail as f:
            self._drain()
            self._json(f.status, {"RemoteException": {
                "exception": f.exception, "javaClassName": _JAVA.get(f.exception, f.exception),
                "message": f.message}})

    def _json(self, status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _body(self) -> Any:
        """The request body, block by block (chunked or Content-Length)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            block = self.rfile.read(min(left, 1 << 20))
            if not block:
                return
            left -= len(block)
            yield block

    def _drain(self) -> None:
        for _ in self._body():
            pass

    def _redirect(self, path: str, params: dict[str, str]) -> None:
        """Step one of CREATE/APPEND/OPEN: send the client to the datanode."""
        self._drain()  # a namenode ignores a body sent to it
        query = "&".join(f"{k}={quote(v)}" for k, v in {**params, "datanode": "true"}.items())
        host = self.server.datanode_host
        self._empty(307, {"Location": f"http://{host}{PREFIX}{quote(path)}?{query}"})

    def _on_datanode(self, params: dict[str, str]) -> bool:
        return self.server.is_datanode and params.get("datanode") == "true"

    def _file(self, path: str) -> str:
        local = self.server.store.local(path)
        if not os.path.isfile(local):
            raise _Fail(404, "FileNotFoundException", f"File does not exist: {path}")
        return local

    # -- operations ---------------------------------------------------------------------------
    def _put_create(self, path: str, params: dict[str, str]) -> None:
        if not self._on_datanode(params):
            return self._redirect(path, params)
        local = self.server.store.local(path)
        if os.path.isdir(local):
            raise _Fail(403, "FileAlreadyExistsException", f"{path} already exists as a directory")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        overwrite = params.get("overwrite", "").lower() == "true"
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(local, flags, 0o644)
        except FileExistsError:
            raise _Fail(403, "FileAlreadyExistsException",
                        f"{path} for client already exists") from None
        with os.fdopen(fd, "wb") as f:
            for block in self._body():
                f.write(block)
        self._empty(201, {"Location": f"hdfs://{self.server.store.root}{path}"})

    def _post_append(self, path: str, params: dict[str, str]) -> None:
        if not self._on_datanode(params):
            self._file(path)
            return self._redirect(path, params)
        with open(self._file(path), "ab") as f:
            for block in self._body():
                f.write(block)
        self._empty(200, {})

    def _get_open(self, path: str, params: dict[str, str]) -> None:
        local = self._file(path)
        if not self._on_datanode(params):
            return self._redirect(path, params)
        size = os.path.getsize(local)
        offset = int(params.get("offset") or 0)
        length = size - offset if params.get("length") in (None, "") else int(params["length"])
        if offset > size:
            raise _Fail(403, "IOException", f"Offset={offset} out of the range [0, {size})")
        length = max(0, min(length, size - offset))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        with open(local, "rb") as f:
            f.seek(offset)
            while length > 0:
                block = f.read(min(length, 1 << 20))
                if not block:
                    break
                self.wfile.write(block)
                length -= len(block)

    def _put_rename(self, path: str, params: dict[str, str]) -> None:
        store = self.server.store
        src = store.local(path)
        dst = store.local(params.get("destination") or "")
        with store.lock:
            if os.path.isdir(dst):
                dst = os.path.join(dst, os.path.basename(src))
            ok = (os.path.exists(src) and not os.path.exists(dst)
                  and os.path.isdir(os.path.dirname(dst)) and src != store.root)
            if ok:
                os.rename(src, dst)
        self._json(200, {"boolean": ok})

    def _delete_delete(self, path: str, params: dict[str, str]) -> None:
        local = self.server.store.local(path)
        with self.server.store.lock:
            if not os.path.lexists(local):
                return self._json(200, {"boolean": False})
            if os.path.isdir(local):
                if os.listdir(local) and params.get("recursive", "").lower() != "true":
                    raise _Fail(403, "PathIsNotEmptyDirectoryException",
                                f"`{path} is non empty': Directory is not empty")
                shutil.rmtree(local)
            else:
                os.remove(local)
        self._json(200, {"boolean": True})

    def _get_liststatus(self, path: str, params: dict[str, str]) -> None:
        store = self.server.store
        local = store.local(path)
        if os.path.isfile(local):
            entries = [store.status(local, "")]
        elif os.path.isdir(local):
            entries = []
            for name in sorted(os.listdir(local)):
                try:
                    entries.append(store.status(os.path.join(local, name), name))
                except FileNotFoundError:
                    pass  # deleted while listing
        else:
            raise _Fail(404, "FileNotFoundException", f"File {path} does not exist.")
        self._json(200, {"FileStatuses": {"FileStatus": entries}})

    def _get_getfilestatus(self, path: str, params: dict[str, str]) -> None:
        local = self.server.store.local(path)
        if not os.path.exists(local):
            raise _Fail(404, "FileNotFoundException", f"File does not exist: {path}")
        self._json(200, {"FileStatus": self.server.store.status(local, "")})

    def _put_mkdirs(self, path: str, params: dict[str, str]) -> None:
        local = self.server.store.local(path)
        try:
            os.makedirs(local, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _Fail(403, "FileAlreadyExistsException",
                        f"Parent path is not a directory: {path}") from None
        self._json(200, {"boolean": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, store: _Store, is_datanode: bool):
        super().__init__(("127.0.0.1", port), _Handler)
        self.store = store
        self.is_datanode = is_datanode
        self.datanode_host = ""


@dataclass(frozen=True)
class WebHdfs:
    """A reachable WebHDFS: ``http_url`` of the namenode, ``url`` the ``hdfs://`` form the
    hub takes, ``root`` the backing folder of our test server (None for a real cluster),
    ``rpc_url`` the namenode's RPC address (``hdfs://host:port``, for clients speaking
    Hadoop's RPC rather than WebHDFS; None when unknown), ``cluster`` the
    :class:`tests.servers.hdfs.ThrowawayHdfs` the tests started (None for an external one),
    which can kill and restart its DataNode or the whole cluster."""

    http_url: str
    root: str | None = None
    rpc_url: str | None = None
    cluster: Any = field(default=None, compare=False, repr=False)
    #: The user named in :attr:`url` (None: the hub's default, ``$HADOOP_USER_NAME`` or the
    #: login); the throwaway cluster's is ``hub``, not its superuser, so permissions apply.
    user: str | None = None

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"hdfs://{user}" + self.http_url.split("://", 1)[1].rstrip("/")

    def client(self) -> Any:
        import hdfs

        return hdfs.InsecureClient(self.http_url, user=self.user or os.environ.get(
            "HADOOP_USER_NAME", "hub"))


def serve(root: str, port: int = 0) -> tuple[_Server, _Server]:
    """Start namenode and datanode listeners in threads of this process."""
    store = _Store(root)
    datanode = _Server(0, store, True)
    namenode = _Server(port, store, False)
    namenode.datanode_host = f"127.0.0.1:{datanode.server_address[1]}"
    for s in (datanode, namenode):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    return namenode, datanode


def from_env() -> WebHdfs | None:
    url = os.environ.get("HUB_TEST_WEBHDFS")
    return WebHdfs(url.rstrip("/"), rpc_url=os.environ.get("HUB_TEST_HDFS_RPC")) if url \
        else None


class ThrowawayWebHdfs:
    """Our test server in a process of its own, on a free port, over a temporary folder (not
    used by the default suite, see the module's docstring)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-webhdfs-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> WebHdfs:

        port = free_port()
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        log = os.path.join(self.dir, "server.log")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.servers.webhdfs",
                                          "--root", os.path.join(self.dir, "data"),
                                          "--port", str(port)],
                                         cwd=here, stdout=out, stderr=subprocess.STDOUT)
        server = WebHdfs(f"http://127.0.0.1:{port}", os.path.join(self.dir, "data"))
        wait_until(lambda: server.client().status("/", strict=False) is not None, 20,
                   "the WebHDFS test server", self.proc, log)
        return server

    def stop(self) -> None:
        stop_server(self.proc, self.dir)
        self.proc = None


def shared() -> WebHdfs:
    """One HDFS per test process (``HUB_TEST_WEBHDFS``'s, or a real NameNode and DataNode
    started now, tests/servers/hdfs.py, stopped at exit), for fixtures and the conformance
    cases alike."""
    from tests.servers.hdfs import ThrowawayHdfs

    return shared_server("webhdfs", from_env, ThrowawayHdfs)


def main() -> None:
    ap = argparse.ArgumentParser(description="WebHDFS test server over a local folder")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=9870)
    args = ap.parse_args()
    os.makedirs(args.root, exist_ok=True)
    namenode, _ = serve(args.root, args.port)
    print(f"WebHDFS test server: http://127.0.0.1:{namenode.server_address[1]} over {args.root}",
          flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
