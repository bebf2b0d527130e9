"""The console's FastAPI app: an HTML page and a JSON twin per view, report files, and Airflow's
authentication in front of all of it.

The Airflow plugin (``plugins/logstream_console.py``) mounts :func:`create_app` in the API server
under ``/logstream``. Every route depends on Airflow's own ``get_user``
(``airflow.api_fastapi.core_api.security``): the bearer token of the REST API (``POST
/auth/token``) or the UI's session cookie. Without one, JSON routes answer 401 (403 for an invalid
token) and HTML routes redirect to Airflow's login page.

Handlers are plain functions (FastAPI runs them in its thread pool): they read files. From the
API server's start (:class:`StartWarmUp`), :class:`~logstream.console.warm.Warmer` keeps
today's and yesterday's reads warm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from logstream.config import Settings
from logstream.console import findings, health, pages, reports, windows
from logstream.console.html import esc
from logstream.console.tables import STORAGE_ERRORS, shared_storage
from logstream.console.warm import Warmer
from logstream.errors import LogstreamError

#: Where the plugin mounts the app in the API server.
URL_PREFIX = "/logstream"

#: Console pages run no script and load nothing from elsewhere; only Airflow's UI may frame them.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'"
)
#: Report files (Data Docs, the latency HTML) render in a sandbox: no script, no same origin.
FILE_POLICY = "sandbox; frame-ancestors 'self'"


def _day(value: str | None) -> date:
    if value is None or value == "":
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"day={value!r} is not a date; use YYYY-MM-DD") from None


def _base(request: Request) -> str:
    """The console's own path prefix (the mount point, under Airflow's base URL path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})


def _error_page(detail: object, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>logstream console</title><p>{esc(detail)}</p>",
        status_code=status,
        headers={"Content-Security-Policy": PAGE_POLICY},
    )


def _login_url(request: Request) -> str | None:
    """Airflow's login page for this request, or None when no auth manager is running."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except (ImportError, RuntimeError):
        return None


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _install_error_handlers(app: FastAPI) -> None:
    def is_api(request: Request) -> bool:
        return request.url.path.removeprefix(_base(request)).startswith("/api/")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_api(request):
            login = _login_url(request) if exc.status_code in (401, 403) else None
            if login is not None:
                return _security_headers(RedirectResponse(login, status_code=303))
            return _security_headers(_error_page(exc.detail, exc.status_code))
        return _security_headers(
            JSONResponse(
                {"detail": exc.detail},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        )

    def unavailable(request: Request, detail: str) -> Response:
        if is_api(request):
            return _security_headers(JSONResponse({"detail": detail}, status_code=503))
        return _security_headers(_error_page(detail, 503))

    @app.exception_handler(LogstreamError)
    async def data_error(request: Request, exc: LogstreamError) -> Response:
        return unavailable(request, str(exc))

    async def storage_error(request: Request, exc: Exception) -> Response:
        return unavailable(
            request,
            f"the console could not read its data ({type(exc).__name__}: {exc}); check that "
            "data_root, status_dir and reports_dir are reachable from the API server (shared "
            "storage: s3_endpoint, s3_credentials_file, webhdfs_url)",
        )

    for error in STORAGE_ERRORS:
        app.add_exception_handler(error, storage_error)


class StartWarmUp:
    """A root middleware of the API server (the plugin's ``fastapi_root_middlewares``): when the
    server starts (the ASGI lifespan), it starts the warm-up of the ``console`` app, so today's
    reads are current before anyone opens a page. Every request passes through untouched; a
    mounted app gets no lifespan of its own, hence a middleware of the root app."""

    def __init__(self, app: Callable, console: FastAPI) -> None:
        self.app = app
        self._warmer: Warmer = console.state.warmer
        self._started = False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan" and not self._started:
            self._started = True
            self._warmer.start()
        await self.app(scope, receive, send)


def _default_user_dependency() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def create_app(
    settings_loader: Callable[[], Settings] = Settings.load,
    user_dependency: Callable[..., Any] | None = None,
) -> FastAPI:
    """The console app. ``settings_loader`` is called once, on the first request (the API
    server's environment is complete by then); ``user_dependency`` defaults to Airflow's
    ``get_user``."""
    settings = functools.cache(settings_loader)
    warmer = Warmer(settings)
    authenticated = [
        Depends(user_dependency or _default_user_dependency()),
        Depends(warmer.touch),  # after the user is known: anonymous requests warm nothing
    ]
    app = FastAPI(
        title="logstream console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=authenticated,
    )
    app.state.warmer = warmer
    _install_error_handlers(app)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable) -> Response:
        return _security_headers(await call_next(request))

    api = APIRouter(prefix="/api")

    @api.get("/health")
    def health_json() -> dict:
        return health.pipeline_health(settings())

    @api.get("/windows")
    def windows_json(day: str | None = None, service: str | None = None) -> dict:
        return windows.metric_windows(settings(), _day(day), service or None)

    @api.get("/anomalies")
    def anomalies_json(day: str | None = None, kind: str | None = None) -> dict:
        return findings.anomaly_rows(settings(), _day(day), kind or None)

    @api.get("/quarantine")
    def quarantine_json(day: str | None = None) -> dict:
        return findings.quarantine_by_reason(settings(), _day(day))

    @api.get("/late")
    def late_json(day: str | None = None) -> dict:
        return findings.late_by_service(settings(), _day(day))

    @api.get("/reconciliation")
    def reconciliation_json(day: str | None = None) -> dict:
        return reports.reconciliation(settings(), _day(day))

    @api.get("/latency")
    def latency_json(day: str | None = None) -> dict:
        return reports.latency(settings(), _day(day))

    @api.get("/quality")
    def quality_json(day: str | None = None) -> dict:
        return reports.quality(settings(), _day(day))

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        return RedirectResponse(f"{_base(request)}/health", status_code=303)

    @app.get("/health", response_class=HTMLResponse)
    def health_html(request: Request) -> Response:
        return _html(pages.health_page(health.pipeline_health(settings()), _base(request)))

    @app.get("/windows", response_class=HTMLResponse)
    def windows_html(
        request: Request, day: str | None = None, service: str | None = None
    ) -> Response:
        data = windows.metric_windows(settings(), _day(day), service or None)
        charted = 1 if service else windows.MAX_CHARTED_SERVICES
        return _html(pages.windows_page(data, _base(request), service or None, charted))

    @app.get("/anomalies", response_class=HTMLResponse)
    def anomalies_html(
        request: Request, day: str | None = None, kind: str | None = None
    ) -> Response:
        data = findings.anomaly_rows(settings(), _day(day), kind or None)
        return _html(pages.anomalies_page(data, _base(request), kind or None))

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine_html(request: Request, day: str | None = None) -> Response:
        chosen = _day(day)
        quarantine = findings.quarantine_by_reason(settings(), chosen)
        late = findings.late_by_service(settings(), chosen)
        return _html(pages.quarantine_page(quarantine, late, _base(request)))

    @app.get("/reports", response_class=HTMLResponse)
    def reports_html(request: Request, day: str | None = None) -> Response:
        chosen = _day(day)
        current = settings()
        return _html(
            pages.reports_page(
                reports.reconciliation(current, chosen),
                reports.latency(current, chosen),
                reports.quality(current, chosen),
                _base(request),
            )
        )

    @app.get("/files/{relative:path}")
    def report_file(relative: str) -> Response:
        current = settings()
        target = reports.served_file(current, relative)
        headers = {"Content-Security-Policy": FILE_POLICY}
        if isinstance(target, Path):
            return FileResponse(target, media_type=reports.media_type(target), headers=headers)
        content = None if target is None else shared_storage(current).read_bytes(target)
        if target is None or content is None:
            raise HTTPException(404, "no such report file")
        return Response(content, media_type=reports.media_type(target), headers=headers)

    return app
