"""Binding the service's address and running the ASGI server (uvicorn).

``--listen`` takes ``HOST:PORT``, ``:PORT``, ``PORT`` or ``[IPv6]:PORT``; port 0 picks a free
one (the line ``hub: serving on http://HOST:PORT`` says which).  Beyond loopback the service
refuses to start without ``HUB_TOKEN``: its mutating endpoints would be open to the network.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from typing import Any

from runtime.errors import ConfigError

log = logging.getLogger("hub.service")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8083  # Kafka Connect's


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``(host, port)`` of a ``--listen`` / ``--http`` value; ConfigError (naming
    ``option``) when malformed."""
    text = text.strip()
    host, port = DEFAULT_HOST, text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
        host = host or DEFAULT_HOST
    elif not text.isdigit():
        host, port = text, str(DEFAULT_PORT)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{option} {text!r}: expected HOST:PORT (e.g. 127.0.0.1:8083)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def token_for(host: str) -> str | None:
    """``HUB_TOKEN`` (None when unset); ConfigError when listening beyond loopback without it."""
    token = os.environ.get("HUB_TOKEN") or None
    if token is None and not is_loopback(host):
        raise ConfigError(f"listening on {host} (beyond this machine) needs a token for the "
                          f"mutating endpoints: set HUB_TOKEN")
    return token


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"can't listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Any) -> Any:
    import uvicorn

    # no access log: the page polls every second; the API logs what changes things itself
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            log_config=None)
    return uvicorn.Server(config)


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Serve in this (main) thread until SIGINT/SIGTERM."""
    make_server(app).run(sockets=[sock])


def serve_in_thread(app: Any, sock: socket.socket) -> Any:
    """Serve from a daemon thread (``hub run --http``); returns the server (``should_exit``
    ends it)."""
    server = make_server(app)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http",
                     daemon=True).start()
    return server
