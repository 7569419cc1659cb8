"""``hub serve`` and ``hub run --http``: wiring the supervisor (or the one pipeline of a run),
the API and the server together."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from runtime.errors import MissingExtraError


def _require_serve_extra() -> None:
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError(module, "serve") from None


def serve(state_dir: str, listen: str) -> int:
    """Run the service on ``state_dir`` until SIGINT/SIGTERM."""
    _require_serve_extra()
    from hub.service.api import create_app
    from hub.service.server import bind, parse_listen, serve_forever, token_for, url_of
    from hub.service.supervisor import Supervisor

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = parse_listen(listen)
    token = token_for(host)
    sock = bind(host, port)
    supervisor = Supervisor(state_dir)
    supervisor.open()
    try:
        app = create_app(supervisor, token)
        print(f"hub: serving on {url_of(sock)} (state {supervisor.root}"
              f"{', token required' if token else ''})", file=sys.stderr, flush=True)
        closing = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            # uvicorn serves the first SIGINT/SIGTERM and raises it again when done: that one
            # is ignored; one during the pipelines' final checkpoints exits at once
            if closing.is_set():
                print("hub: second signal: exiting now without final checkpoints",
                      file=sys.stderr, flush=True)
                os._exit(130)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        serve_forever(app, sock)
        closing.set()
    finally:
        print("hub: stopping the pipelines with a final checkpoint (signal again to exit at "
              "once)", file=sys.stderr, flush=True)
        supervisor.close()
    print("hub: stopped", file=sys.stderr, flush=True)
    return 0


def serve_run(spec: Any, metrics: Any, control: Any, listen: str) -> tuple[Any, Callable[[], None]]:
    """``hub run --http ADDR``: the run's handle (its metrics and control, as the service
    sees a pipeline) and the function ending the server that serves it."""
    from hub.service.handle import PipelineHandle

    handle = PipelineHandle(spec)
    handle.metrics, handle.control, handle.state = metrics, control, "RUNNING"
    return handle, serve_one(handle, listen)


def serve_one(handle: Any, listen: str) -> Callable[[], None]:
    """``hub run --http``: status, metrics and the page of one foreground pipeline, served
    from a thread; returns the function that ends the server."""
    _require_serve_extra()
    from hub.service.api_one import create_app
    from hub.service.server import bind, parse_listen, serve_in_thread, url_of

    host, port = parse_listen(listen, "--http")
    sock = bind(host, port)
    server = serve_in_thread(create_app(handle), sock)
    print(f"hub: serving status and metrics on {url_of(sock)}", file=sys.stderr, flush=True)

    def stop() -> None:
        server.should_exit = True
    return stop
