"""The read-only HTTP API of ``hub run --http``: one pipeline's status, Prometheus metrics and
page.  Nothing here changes the run (stop it with a signal, savepoints with ``hub savepoint``),
so no token is needed wherever it listens."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.service import page, schemas
from hub.service.collector import registry_for
from hub.service.handle import PipelineHandle


def create_app(handle: PipelineHandle) -> FastAPI:
    app = FastAPI(title=f"cdc-hub run {handle.name}")
    registry = registry_for(lambda: [handle])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page.detail(handle, needs_token=False, actions=False)

    @app.get("/status", response_model=schemas.Status)
    def status() -> Any:
        return handle.status()

    @app.get(f"/pipelines/{handle.name}/status", response_model=schemas.Status,
             include_in_schema=False)
    def status_for_page() -> Any:
        return handle.status()

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
