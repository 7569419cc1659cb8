"""Schema registry failures are the registry's, not the messages': they reach the runtime as
transient or terminal errors, never as bad records sent to the dead-letter queue.

The registry here is a real HTTP server on a free local port that answers every request with
one status (a registry under load or restarting), not a stand-in for the client."""
from __future__ import annotations

import http.server
import struct
import threading
from collections.abc import Iterator

import pytest

from formats.message.schema_registry import SchemaRegistry
from formats.registry import resolve_message_format
from runtime.errors import TerminalError, TransientError


def _registry(status: int) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"error_code": %d}' % status)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=[503, 429])
def busy_registry(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _registry(request.param)


@pytest.fixture
def refusing_registry() -> Iterator[str]:
    yield from _registry(404)


def test_a_busy_registry_is_transient(busy_registry: str) -> None:
    with pytest.raises(TransientError, match="HTTP"):
        SchemaRegistry(busy_registry).schema(1)


def test_a_refusal_is_terminal(refusing_registry: str) -> None:
    with pytest.raises(TerminalError, match="HTTP 404"):
        SchemaRegistry(refusing_registry).schema(1)


def test_messages_are_not_bad_records_when_the_registry_is_busy(busy_registry: str) -> None:
    decoder = resolve_message_format(
        "avro", {"schema-registry-url": busy_registry}).decoder()
    value = struct.pack(">bI", 0, 7) + b"\x02"  # wire format, schema id 7
    with pytest.raises(TransientError):
        decoder.decode([None], [value], [0], "db.t")
