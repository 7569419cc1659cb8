"""The HTTP API of ``hub serve``, shaped like Kafka Connect's REST API, with Flink's checkpoint
and savepoint views; the OpenAPI document is at ``/openapi.json`` (``/docs`` renders it).

Every error is an :class:`~hub.service.schemas.ErrorBody` with one message line, never a
traceback.  Mutating endpoints take ``Authorization: Bearer <HUB_TOKEN>`` when the service has
a token (it must when it listens beyond loopback).  No response carries a secret: the
configuration is masked (:mod:`hub.service.masking`), and a pipeline file's problems never echo
values (:mod:`hub.problems`).
"""
from __future__ import annotations

import hmac
import logging
import os
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hub.errors import ConfigErrors
from hub.registry import list_plugins
from hub.service import page, schemas
from hub.service.collector import registry_for
from hub.service.managed import Conflict
from hub.service.masking import masked_config
from hub.service.supervisor import BODY, Broken, NotFound, Supervisor
from runtime.errors import ConfigError, HubError

log = logging.getLogger("hub.service")

TOML_BODY = {"requestBody": {"required": True, "content": {
    "application/toml": {"schema": {"type": "string", "minLength": 1}},
    "text/plain": {"schema": {"type": "string", "minLength": 1}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorBody} for code in (400, 401, 404, 409, 422)}
_bearer = HTTPBearer(auto_error=False, description="HUB_TOKEN, when the service has one")


def create_app(supervisor: Supervisor, token: str | None = None) -> FastAPI:
    """The API over ``supervisor``'s pipelines; ``token`` guards the mutating endpoints."""
    app = FastAPI(title="cdc-hub service", version=_version(),
                  description="Pipelines of a `hub serve`: create, inspect, pause, resume, "
                              "stop, savepoints; metrics at /metrics; the page at /.")
    registry = registry_for(lambda: list(supervisor.pipelines.values()))

    def authorized(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if token is None:
            return
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise _Unauthorized()

    # declared (and in the OpenAPI document) only when the service has a token
    guard = [Depends(authorized)] if token is not None else []
    _install_error_handlers(app)

    # -- the page and metrics ---------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page.overview(list(supervisor.pipelines.values()), token is not None,
                             dict(supervisor.broken))

    @app.get("/ui/pipelines/{name}", response_class=HTMLResponse, include_in_schema=False)
    def detail(name: str) -> str:
        return page.detail(supervisor.get(name), token is not None)

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
             summary="Prometheus metrics of every pipeline")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- reading ------------------------------------------------------------------------------
    @app.get("/pipelines", summary="The pipelines: names, or with expand=status their status",
             response_model=list[str] | dict[str, schemas.Status])
    def list_pipelines(expand: str | None = Query(None, pattern="^status$")) -> Any:
        """Names of the pipelines (those whose stored file does not load any more included:
        their status answers 409 with the problems); with ``expand=status`` the status of
        each that loads."""
        pipelines = sorted(supervisor.pipelines.values(), key=lambda p: p.name)
        if expand == "status":
            return {p.name: p.status() for p in pipelines}
        return sorted([p.name for p in pipelines] + list(supervisor.broken))

    @app.get("/pipelines/{name}", response_model=schemas.PipelineDetail, responses=_ERRORS)
    def get_pipeline(name: str) -> Any:
        p = supervisor.get(name)
        return {**_info(p), "config": masked_config(p.spec)}

    @app.get("/pipelines/{name}/config", response_model=dict[str, Any], responses=_ERRORS,
             summary="The validated configuration, secrets masked")
    def get_config(name: str) -> Any:
        return masked_config(supervisor.get(name).spec)

    @app.get("/pipelines/{name}/status", response_model=schemas.Status, responses=_ERRORS)
    def get_status(name: str) -> Any:
        return supervisor.get(name).status()

    @app.get("/pipelines/{name}/checkpoints", response_model=schemas.CheckpointHistory,
             responses=_ERRORS, summary="Checkpoints of this run, retained ones, savepoints")
    def get_checkpoints(name: str) -> Any:
        return _history(supervisor.get(name))

    @app.get("/plugins", response_model=list[schemas.Plugin],
             summary="Installed sources, sinks and formats with their options")
    def get_plugins(kind: str | None = Query(None, pattern="^(source|sink|format)$")) -> Any:
        return [{"kind": i.kind, "name": i.name, "summary": i.summary, "error": i.error,
                 "options": [vars(o) for o in i.options]} for i in list_plugins(kind)]

    # -- creating and validating --------------------------------------------------------------
    @app.post("/validate", response_model=schemas.Validation, openapi_extra=TOML_BODY,
              responses=_ERRORS, summary="Validate a pipeline file (TOML) without creating it")
    async def validate(request: Request) -> Any:
        text = await _toml_body(request)
        try:
            spec = await run_in_threadpool(supervisor.validate, text)
        except ConfigErrors as exc:
            return {"valid": False, "errors": exc.lines()}
        return {"valid": True, "name": spec.name, "source": spec.source_type,
                "sink": spec.sink_type, "errors": []}

    @app.post("/pipelines", status_code=201, response_model=schemas.PipelineInfo,
              openapi_extra=TOML_BODY, responses=_ERRORS, dependencies=guard,
              summary="Create and start a pipeline from its file (TOML), validated first")
    async def create(request: Request) -> Any:
        text = await _toml_body(request)
        p = await run_in_threadpool(supervisor.create, text)
        log.info("created pipeline %s (%s -> %s)", p.name, p.spec.source_type, p.spec.sink_type)
        return _info(p)

    @app.put("/pipelines/{name}/config", response_model=schemas.PipelineInfo,
             openapi_extra=TOML_BODY, responses=_ERRORS, dependencies=guard,
             summary="Replace a pipeline's file (TOML), validated first; a running pipeline "
                     "restarts from its final checkpoint under it")
    async def update(name: str, request: Request) -> Any:
        text = await _toml_body(request)
        p = await run_in_threadpool(supervisor.update, name, text)
        log.info("updated pipeline %s", name)
        return _info(p)

    # -- acting -------------------------------------------------------------------------------
    @app.put("/pipelines/{name}/pause", status_code=202, response_model=schemas.PipelineInfo,
             responses=_ERRORS, dependencies=guard,
             summary="Stop with a final checkpoint; resume goes on from it")
    def pause(name: str) -> Any:
        return _info(supervisor.pause(name))

    @app.put("/pipelines/{name}/resume", status_code=202, response_model=schemas.PipelineInfo,
             responses=_ERRORS, dependencies=guard)
    def resume(name: str) -> Any:
        return _info(supervisor.resume(name))

    @app.put("/pipelines/{name}/stop", response_model=schemas.PipelineInfo, responses=_ERRORS,
             dependencies=guard, summary="Stop with a final checkpoint, or a named savepoint")
    def stop(name: str, savepoint: str | None = Query(
            None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")) -> Any:
        return _info(supervisor.stop(name, savepoint))

    @app.post("/pipelines/{name}/restart", response_model=schemas.PipelineInfo,
              responses=_ERRORS, dependencies=guard,
              summary="Stop with a final checkpoint and start again from it")
    def restart(name: str) -> Any:
        return _info(supervisor.restart(name))

    @app.delete("/pipelines/{name}", status_code=204, responses=_ERRORS, dependencies=guard,
                summary="Stop (final checkpoint) and forget a pipeline; checkpoints stay")
    def delete(name: str) -> Response:
        supervisor.delete(name)
        log.info("deleted pipeline %s", name)
        return Response(status_code=204)

    @app.post("/pipelines/{name}/savepoints", response_model=schemas.SavepointDone,
              responses=_ERRORS, dependencies=guard, summary="Take a savepoint (and stop)")
    def savepoint(name: str, body: schemas.SavepointRequest | None = None) -> Any:
        body = body or schemas.SavepointRequest()
        sp = body.name or datetime.now().strftime("savepoint-%Y%m%d-%H%M%S")
        return {"path": supervisor.savepoint(name, sp, body.stop)}

    return app


def _info(p: Any) -> dict[str, Any]:
    return {"name": p.name, "state": p.current_state(), "source": p.spec.source_type,
            "sink": p.spec.sink_type, "parallelism": p.spec.parallelism}


def _history(p: Any) -> dict[str, Any]:
    storage = p.storage
    try:
        retained = set(storage.completed_ids())
        savepoints = sorted(os.listdir(storage.savepoints_dir)) \
            if os.path.isdir(storage.savepoints_dir) else []
    except (HubError, OSError) as exc:
        log.warning("%s: can't list its checkpoints: %s", p.name, exc)
        retained, savepoints = set(), []
    seen = {}
    for info in list(p.metrics.checkpoint_history):
        seen[info.checkpoint_id] = {
            "id": info.checkpoint_id, "completed_at": info.completed_at,
            "duration_s": round(info.duration_s, 4), "savepoint": info.savepoint,
            "retained": info.checkpoint_id in retained}
    for cid in retained:
        seen.setdefault(cid, {"id": cid, "retained": True})
    for cid, entry in seen.items():
        if entry["retained"]:
            entry["size_bytes"] = p.checkpoint_size(cid)
            entry["path"] = os.path.join(storage.checkpoints_dir, f"chk-{cid:06d}")
    return {"completed": p.metrics.checkpoints_completed, "failed": p.metrics.checkpoints_failed,
            "history": [seen[k] for k in sorted(seen, reverse=True)], "savepoints": savepoints}


async def _toml_body(request: Request) -> str:
    data = await request.body()
    if not data.strip():
        raise ConfigError("the body is empty: send the pipeline file (TOML)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{BODY}:{line}: not UTF-8 text") from None


class _Unauthorized(HubError):
    pass


def _error(status: int, message: str, errors: list[str] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse({"error_code": status, "message": message, "errors": errors or []},
                        status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConfigErrors)
    async def config_errors(_: Request, exc: ConfigErrors) -> JSONResponse:
        lines = exc.lines()
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        return _error(400, lines[0] + more, lines)

    @app.exception_handler(ConfigError)
    async def config_error(_: Request, exc: ConfigError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(Broken)
    async def broken(_: Request, exc: Broken) -> JSONResponse:
        return _error(409, str(exc), exc.problems)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, exc: _Unauthorized) -> JSONResponse:
        return _error(401, "this endpoint needs the service's token: "
                           "Authorization: Bearer <HUB_TOKEN>")

    @app.exception_handler(HubError)
    async def hub_error(_: Request, exc: HubError) -> JSONResponse:
        return _error(409 if not exc.transient else 503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        lines = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                 for e in errs] or ["invalid request"]
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        return _error(422, lines[0] + more, lines)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names the methods of the first route of the path only: every route
            # of it, as RFC 9110 asks
            methods = {m for r in app.router.routes if r.matches(request.scope)[0] != Match.NONE
                       for m in getattr(r, "methods", None) or ()}
            headers = {**(headers or {}), "Allow": ", ".join(sorted(methods))}
        return _error(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error serving a request: %s: %s", type(exc).__name__, exc,
                  exc_info=os.environ.get("HUB_DEBUG") == "1")
        return _error(500, f"internal error: {type(exc).__name__} (see the service's log)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cdc-hub")
    except PackageNotFoundError:
        return "unknown"

