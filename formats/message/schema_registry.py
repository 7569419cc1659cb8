"""A client of the Confluent Schema Registry REST API (register a schema under a subject, get a
schema by id), with caches, over the standard library's HTTP client."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from runtime.errors import TerminalError, TransientError

_CONTENT = "application/vnd.schemaregistry.v1+json"


class SchemaRegistry:
    """Thread-safe; schemas are immutable per id, so both caches never expire."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._by_id: dict[int, dict] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": _CONTENT, "Accept": _CONTENT})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200]
            # 5xx, a request timeout and too many requests pass; the rest is our request's
            err = TransientError if exc.code >= 500 or exc.code in (408, 429) else TerminalError
            raise err(f"schema registry {self.url}: {method} {path}: HTTP {exc.code} "
                      f"{detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"schema registry {self.url} unreachable: {exc}") from None

    def register(self, subject: str, schema: dict) -> int:
        """The id of ``schema`` under ``subject`` (registered when new)."""
        text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        with self._lock:
            hit = self._ids.get((subject, text))
        if hit is not None:
            return hit
        sid = int(self._call("POST", f"/subjects/{subject}/versions", {"schema": text})["id"])
        with self._lock:
            self._ids[(subject, text)] = sid
            self._by_id[sid] = schema
        return sid

    def schema(self, schema_id: int) -> dict:
        """The (Avro) schema with id ``schema_id``."""
        with self._lock:
            hit = self._by_id.get(schema_id)
        if hit is not None:
            return hit
        schema = json.loads(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])
        with self._lock:
            self._by_id[schema_id] = schema
        return schema
