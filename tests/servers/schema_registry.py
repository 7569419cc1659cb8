"""A Schema Registry *test server* of our own: the part of the Confluent Schema Registry REST
API the avro format uses (register under a subject, get by id, list subjects and versions),
in memory, in a thread.  Or the registry named by ``HUB_TEST_SCHEMA_REGISTRY`` (e.g.
docker-compose's at ``http://127.0.0.1:8081``)."""
from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: dict[str, int] = {}          # canonical schema text -> id
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}


class _Handler(BaseHTTPRequestHandler):
    registry: _Registry

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _reply(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        m = re.fullmatch(r"/subjects/([^/]+)/versions", self.path)
        if not m:
            return self._reply(404, {"error_code": 404, "message": "not found"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        text = json.dumps(json.loads(body["schema"]), sort_keys=True, separators=(",", ":"))
        r = self.registry
        with r.lock:
            sid = r.ids.get(text)
            if sid is None:
                sid = r.ids[text] = len(r.ids) + 1
                r.schemas[sid] = text
            versions = r.subjects.setdefault(m.group(1), [])
            if sid not in versions:
                versions.append(sid)
        return self._reply(200, {"id": sid})

    def do_GET(self) -> None:  # noqa: N802
        r = self.registry
        m = re.fullmatch(r"/schemas/ids/(\d+)", self.path)
        if m:
            text = r.schemas.get(int(m.group(1)))
            if text is None:
                return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return self._reply(200, {"schema": text})
        if self.path == "/subjects":
            return self._reply(200, sorted(r.subjects))
        m = re.fullmatch(r"/subjects/([^/]+)/versions", self.path)
        if m and m.group(1) in r.subjects:
            return self._reply(200, list(range(1, len(r.subjects[m.group(1)]) + 1)))
        return self._reply(404, {"error_code": 40401, "message": "Subject not found"})


class SchemaRegistryTestServer:
    """Start with :meth:`start` (returns the URL), stop with :meth:`stop`."""

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"registry": _Registry()})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def from_env() -> str | None:
    return os.environ.get("HUB_TEST_SCHEMA_REGISTRY") or None
