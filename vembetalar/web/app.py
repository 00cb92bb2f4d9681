"""The web application: JSON API, pages, sessions, security headers and error handling."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vembetalar.model.errors import describe
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.security import hash_password, new_secret
from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.web import api, apidoc, pages
from vembetalar.web.auth import CsrfFailed, NotAuthenticated, PrincipalCache
from vembetalar.web.ratelimit import LoginLimiter
from vembetalar.web.settings import Settings

log = logging.getLogger("vembetalar.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response: Response
    if _wants_json(request):
        response = JSONResponse({"detail": message}, status_code=status)
    else:
        response = pages.render(request, "error.html", status, status=status, message=message)
    response.headers.update(headers or {})
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path (Starlette's 405 names only the first route's)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    )


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (plain ASGI: no per-request task or stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.headers if k not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


#: FastAPI's built-in OpenTelemetry hooks can record request bodies and exception messages; a
#: request may carry a personnummer, so they stay off whatever the environment says.
NO_TELEMETRY = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


#: Our own errors and the HTTP status each becomes; the message is already one line for a user.
DOMAIN_ERRORS: dict[type[Exception], int] = {
    repo.Forbidden: 403,
    repo.NotFound: 404,
    repo.StepRefused: 409,
    repo.BadLine: 422,
    api.FieldError: 422,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="vembetalar",
        version="0.1.0",
        description="Vem betalar? Kostnadsansvar enligt avtalen, med källan citerad.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        telemetry=NO_TELEMETRY,  # type: ignore[arg-type]
    )
    db_engine = make_engine(settings.database_url)
    migrate(db_engine)
    app.state.settings = settings
    app.state.db_engine = db_engine
    app.state.sessions = session_factory(db_engine)
    app.state.engine = Engine(load_packs(settings.pack_dirs))
    app.state.clock = settings.clock
    app.state.login_limiter = LoginLimiter(settings.login_attempts, settings.login_window_s)
    app.state.dummy_hash = hash_password(new_secret())
    app.state.principals = PrincipalCache(settings.principal_ttl_s)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="vembetalar_session",
        max_age=settings.session_hours * 3600,
        same_site="strict",
        https_only=settings.cookie_secure,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = dict(errors[0]) if errors else {"loc": (), "type": "", "msg": "ogiltig begäran"}
        if first.get("type") == "json_invalid":
            return _error(request, 400, "ogiltig JSON i begäran")
        loc = tuple(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        first["loc"] = loc
        return _error(request, 422, describe(first))

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": "inloggning eller API-token krävs"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _error(request, 403, "CSRF-token saknas eller är fel; ladda om sidan och försök igen")

    async def domain_error(request: Request, exc: Exception) -> Response:
        return _error(request, DOMAIN_ERRORS[type(exc)], str(exc))

    for error_type in DOMAIN_ERRORS:
        app.add_exception_handler(error_type, domain_error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "sidan finns inte", 405: "metoden stöds inte här"}.get(
            exc.status_code, str(exc.detail)
        )
        # Keep the exception's headers; a 405 lists every method the path takes (Allow).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return _error(request, exc.status_code, message, headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # Log the type and place only: the request may carry personal data.
        log.error("internt fel %s på %s %s", type(exc).__name__, request.method, request.url.path)
        return _error(request, 500, "internt fel; försök igen eller kontakta förvaltningen")

    app.include_router(api.router)
    app.include_router(pages.router)
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = apidoc.describe_case(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    return app
