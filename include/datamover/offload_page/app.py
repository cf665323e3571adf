"""The Offload page's FastAPI app, mounted by the API server at /datamover/offload.

Every route depends on Airflow's auth manager, as the API server's own routes do: the caller must be
logged in (the UI's session cookie or a Bearer token from POST /auth/token) and hold the permission
to create runs of ark_offload. Otherwise the answer is 401 or 403 and nothing else happens.

    GET  /                 the page (shown inside the Airflow UI at <base>/plugin/offload)
    GET  /static/<file>    its script and style (a fixed list: no client path reaches a disk)
    GET  /api/state        everything the page shows, the same for every user
    POST /api/rescan       a dry run of ark_offload: checks the credentials, scans (201 + run id)
    POST /api/offload      {"logs": [names]}: an ark_offload run of those logs (201 + run id)

A POST answers 409 while another ark_offload run is queued or running, and 400 when a name is not an
Ark Log of the latest scan. POSTs authenticated by the session cookie must carry the header
`X-Requested-With: offload-page` (a cross-site form cannot), so a foreign page cannot start runs.
"""

from __future__ import annotations

import html
import logging
import os
import socket
import threading
import time
import uuid
from importlib import resources
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from datamover.offload_page.runs import Refused, Snapshot, create_run, dag_url
from datamover.offload_page.status import StatusBoard
from datamover.offload_page.view import (
    DAG_ID,
    OFFLOAD,
    RESCAN,
    SelectionError,
    check_selection,
    credentials_view,
    offload_view,
    page_state,
)

log = logging.getLogger(__name__)

STATIC = {  # the only files served: name -> media type
    "offload.js": "text/javascript; charset=utf-8",
    "offload.css": "text/css; charset=utf-8",
}
CSRF_HEADER, CSRF_VALUE = "x-requested-with", "offload-page"
KAFKA_CONN_ID = "kafka_default"
CONFIG_TTL = 5.0


def _static(name: str) -> bytes:
    return (resources.files("datamover.offload_page") / "static" / name).read_bytes()


class Page:
    """The page's shared state in one API server process: the DB snapshot and the status board."""

    def __init__(self, board: StatusBoard | None) -> None:
        self.snapshot = Snapshot()
        self.board = board
        self._config: tuple[float, dict[str, Any]] | None = None
        self._config_lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """Where the offload goes, as the package's config says (shown on the page; never from a request)."""
        with self._config_lock:
            if self._config is not None and time.monotonic() - self._config[0] < CONFIG_TTL:
                return self._config[1]
        try:
            from datamover.ark.config import config_for_run

            cfg = config_for_run(None)
            value: dict[str, Any] = {
                "connection": cfg.aws_conn_id,
                "bucket": cfg.destination_bucket,
                "prefix": cfg.prefix,
                "storage_base_path": cfg.storage_base_path,
                "remove_after_offload": cfg.remove_after_offload,
                "error": None,
            }
        except Exception as exc:  # shown on the page; the DAG's own tasks report the same error
            value = {"connection": None, "bucket": None, "error": f"{type(exc).__name__}: {exc}"}
        with self._config_lock:
            self._config = (time.monotonic(), value)
        return value

    def state(self, user: str | None) -> dict[str, Any]:
        snap = self.snapshot.get()
        config = self.config()
        status = None
        if self.board is not None:
            self.board.ensure_started()
            if snap["offload"] is not None:
                status = self.board.latest(snap["offload"].run_id)
        scan = snap["scan"]
        sizes = {str(lg["name"]): int(lg.get("size", 0)) for lg in (scan or {}).get("logs", [])}
        offload = None
        if snap["offload"] is not None:
            offload = offload_view(
                snap["offload"], status, snap["records"], snap["failed"], snap["offload_error"], sizes
            )
        credentials = credentials_view(
            snap["checked"], snap["check_result"], snap["check_error"], config.get("connection")
        )
        state = page_state(
            user=user,
            runs=snap["runs"],
            scan=scan,
            scan_run_id=snap["scan_run_id"],
            credentials=credentials,
            offload=offload,
            scan_error=snap["scan_error"],
            paused=snap["paused"],
            dag_found=snap["found"],
            dag_url=dag_url(),
            config=config,
        )
        state["stream"] = (
            {"topic": self.board.topic, "error": self.board.last_error, "received": self.board.received}
            if self.board is not None
            else None
        )
        return state

    def create(self, kind: str, logs: list[str] | None, user: str | None) -> str:
        from airflow.utils.session import create_session

        with create_session() as session:
            run_id = create_run(session, kind, logs, user)
        self.snapshot.invalidate()
        log.info("Offload page: %s created ark_offload run %s (%s, logs=%s)", user, run_id, kind, logs)
        return run_id


def status_board() -> StatusBoard:
    from datamover.hooks.kafka import KafkaHook
    from datamover.operators.ark import STATUS_STREAM, STATUS_TOPIC
    from datamover.streams.definition import stream

    group = f"datamover-offload-page-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def consumer() -> Any:
        # the board assigns partitions itself: the group is never joined, no offset is committed
        return KafkaHook(KAFKA_CONN_ID).consumer(group, **{"enable.partition.eof": False})

    return StatusBoard(consumer, STATUS_TOPIC, stream(STATUS_STREAM))


def _csrf(request: Request) -> None:
    """A POST carried by the session cookie alone must come from the page (a custom header, which a
    cross-site form cannot send and a cross-origin script may not without CORS)."""
    if request.headers.get("authorization"):
        return
    if request.headers.get(CSRF_HEADER, "").lower() != CSRF_VALUE:
        raise HTTPException(403, f"Missing header X-Requested-With: {CSRF_VALUE} (requests from the page)")


def _user_name(user: Any) -> str | None:
    try:
        return str(user.get_name())
    except Exception:
        return None


def _refusal(exc: Refused | SelectionError) -> JSONResponse:
    status = exc.status if isinstance(exc, Refused) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(board: StatusBoard | None = None, with_status_stream: bool = True) -> FastAPI:
    app = FastAPI(
        title="Datamover Offload page",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if board is None and with_status_stream:
        try:
            board = status_board()
        except Exception as exc:  # no stream definition / package config: progress from task states
            log.warning("Offload page: no status stream (%s); progress comes from task states", exc)
    page = Page(board)
    app.state.page = page
    # The permission to trigger ark_offload: Airflow's own dependency, on every route.
    guard = Depends(
        requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=DAG_ID)
    )
    router = APIRouter(dependencies=[guard])

    @router.get("/", response_class=HTMLResponse)
    def index() -> Response:
        return HTMLResponse(_static("index.html"), headers={"Cache-Control": "no-store"})

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        media = STATIC.get(name)
        if media is None:
            raise HTTPException(404, "Not found")
        return Response(_static(name), media_type=media, headers={"Cache-Control": "no-cache"})

    @router.get("/api/state")
    def state(user: GetUserDep) -> JSONResponse:
        return JSONResponse(page.state(_user_name(user)), headers={"Cache-Control": "no-store"})

    @router.post("/api/rescan", status_code=201, dependencies=[Depends(_csrf)])
    def rescan(user: GetUserDep) -> JSONResponse:
        try:
            run_id = page.create(RESCAN, None, _user_name(user))
        except Refused as exc:
            return _refusal(exc)
        return JSONResponse({"run_id": run_id, "kind": RESCAN}, status_code=201)

    @router.post("/api/offload", status_code=201, dependencies=[Depends(_csrf)])
    async def offload(request: Request, user: GetUserDep) -> JSONResponse:
        # The body is read here, after the permission check: a caller without it learns nothing.
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": 'Send JSON: {"logs": ["<name>", ...]}'}, status_code=400)
        if not isinstance(body, dict) or set(body) != {"logs"}:
            return JSONResponse({"detail": 'Send JSON: {"logs": ["<name>", ...]} (nothing else)'}, 400)
        from starlette.concurrency import run_in_threadpool

        def start() -> str:
            scan = page.snapshot.get()["scan"]
            names = check_selection(body["logs"], scan)
            return page.create(OFFLOAD, names, _user_name(user))

        try:
            run_id = await run_in_threadpool(start)
        except (Refused, SelectionError) as exc:
            return _refusal(exc)
        return JSONResponse({"run_id": run_id, "kind": OFFLOAD}, status_code=201)

    app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        route = request.scope.get("path", "")[len(request.scope.get("root_path", "")) :]
        if route in ("", "/") and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_denied_page(exc.status_code, str(exc.detail)), status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app


def _denied_page(status: int, detail: str) -> str:
    what = (
        "Log in to Airflow first: this page uses the same login as the Airflow UI."
        if status == 401
        else "Your Airflow user may not trigger the DAG ark_offload, which the Offload page needs."
        if status == 403
        else detail
    )
    return (
        "<!doctype html><meta charset=utf-8><title>Offload</title>"
        '<body style="font-family:system-ui,sans-serif;margin:2rem">'
        f"<h1>Offload</h1><p>{html.escape(what)}</p><p><small>{status}: {html.escape(detail)}</small></p>"
    )
