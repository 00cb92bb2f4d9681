"""The web application: JSON API, pages, sessions, security headers and error handling."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vembetalar.handoffs.sesam import BadRequest
from vembetalar.mail import MailError
from vembetalar.model.errors import describe
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.security import hash_password, new_secret
from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.web import (
    api,
    apidoc,
    billing_pages,
    handoff_pages,
    oversight_pages,
    pages,
    plain,
    registry_pages,
    supply_pages,
    tokens,
)
from vembetalar.web.auth import CsrfFailed, NotAuthenticated, Principal, PrincipalCache
from vembetalar.web.guard import NOT_AUTHENTICATED, RequestGuard
from vembetalar.web.ratelimit import LoginThrottle
from vembetalar.web.settings import Settings
from vembetalar.web.websesam_pages import router as websesam_router

log = logging.getLogger("vembetalar.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}
#: Sent only when the cookies are Secure, i.e. the site is served over HTTPS.
HSTS = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}

#: The longest 422 message: the bad value itself is cut to a short prefix by ``describe``.
MAX_MESSAGE = 300


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response: Response
    if _wants_json(request):
        response = JSONResponse({"detail": message}, status_code=status)
    else:
        response = pages.render(
            request, "error.html", status, status=status, message=plain.page_message(message)
        )
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

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        headers = {**SECURITY_HEADERS, **(HSTS if hsts else {})}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

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
    BadRequest: 422,
    MailError: 502,
}


class QuietErrors:
    """Outermost layer: Starlette re-raises an exception after its 500 page has been sent, "so
    that servers can log it" — with a traceback whose text may hold SQL parameters or request
    values. Our 500 handler has already logged an error id, the type and the route; the
    exception stops here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise


def _route_of(request: Request) -> str:
    """The matched route's template (``/api/v1/cases/{case_id}``), never the values in it."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return str(template) if template else "(okänd väg)"


def _bounded(message: str) -> str:
    """One line of valid UTF-8, not longer than MAX_MESSAGE."""
    message = message.encode("utf-8", "replace").decode("utf-8").replace("\n", " ")
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _case_id(request: Request) -> str | None:
    raw = request.path_params.get("case_id") if "path_params" in request.scope else None
    try:
        return str(uuid.UUID(str(raw))) if raw else None
    except ValueError:
        return None


def _audit_denied(request: Request, action: str, case_id: str | None = None) -> None:
    """A refused request by a known user, under their organisation so their own admins see it.
    Only the method, the route's template and a well-formed case id are kept. The case id goes
    in the detail, not in ``case_id``: the case's own parties must not learn who probed for it."""
    user: Principal | None = getattr(request.state, "user", None)
    if user is None:
        return
    actor = repo.Actor(user.id, user.username, user.role, user.organisation_id)
    detail = f"{request.method} {_route_of(request)}" + (f" ärende {case_id}" if case_id else "")
    with request.app.state.sessions() as db:
        repo.audit(db, actor, action, None, detail)
        db.commit()


def _docs_page() -> HTMLResponse:
    """Swagger UI from the installed fastapi-offline package and our own starter script: no CDN,
    no inline script, so the strict CSP holds."""
    return HTMLResponse(
        '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        "<title>vembetalar – API</title>"
        '<link rel="stylesheet" href="/api/v1/docs/assets/swagger-ui.css"></head>'
        '<body><div id="swagger-ui"></div>'
        '<script src="/api/v1/docs/assets/swagger-ui-bundle.js"></script>'
        '<script src="/static/swagger-init.js"></script></body></html>'
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="vembetalar",
        version="0.1.0",
        description="Vem betalar? Kostnadsansvar enligt avtalen, med källan citerad.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
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
    app.state.login_throttle = LoginThrottle(
        settings.login_attempts,
        settings.login_window_s,
        settings.login_max_wait_s,
        settings.login_address_attempts,
    )
    # Password hashing runs in worker threads, a few at a time (each takes tens of ms and MiBs).
    app.state.hash_limiter = anyio.CapacityLimiter(settings.hash_concurrency)
    app.state.dummy_hash = hash_password(new_secret())
    app.state.principals = PrincipalCache(settings.principal_ttl_s)

    # Outermost first: headers on every answer, then the session cookie, then the guard (which
    # needs the session to know who is asking), then the app.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="vembetalar_session",
        max_age=settings.session_hours * 3600,
        same_site="strict",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    build_stack = app.build_middleware_stack

    def quiet_stack() -> ASGIApp:
        return QuietErrors(build_stack())

    app.build_middleware_stack = quiet_stack  # type: ignore[method-assign]

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
        return _error(request, 422, _bounded(describe(first)))

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": NOT_AUTHENTICATED},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        await run_in_threadpool(_audit_denied, request, "denied.csrf")
        return _error(request, 403, "CSRF-token saknas eller är fel; ladda om sidan och försök igen")

    async def domain_error(request: Request, exc: Exception) -> Response:
        status = DOMAIN_ERRORS[type(exc)]
        if status in (403, 404):
            action = "denied.forbidden" if status == 403 else "denied.not_found"
            await run_in_threadpool(_audit_denied, request, action, _case_id(request))
        return _error(request, status, str(exc))

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
        # An error id, the type and the route only: the request and the exception's text may
        # carry personal data. The id lets staff and operators find this line.
        error_id = secrets.token_hex(4)
        log.error(
            "internt fel %s: %s på %s %s", error_id, type(exc).__name__, request.method, _route_of(request)
        )
        return _error(
            request, 500, f"internt fel (fel-id {error_id}); försök igen eller kontakta förvaltningen"
        )

    @app.get("/api/v1/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return _docs_page()

    app.include_router(api.router)
    app.include_router(tokens.router)
    app.include_router(pages.router)
    app.include_router(billing_pages.router)
    app.include_router(registry_pages.router)
    app.include_router(handoff_pages.router)
    app.include_router(handoff_pages.api_router)
    app.include_router(supply_pages.router)  # drug stocks and shortages
    app.include_router(websesam_router)
    app.include_router(oversight_pages.router)
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = apidoc.describe_case(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    swagger = resources.files("fastapi_offline") / "static"
    app.mount("/api/v1/docs/assets", StaticFiles(directory=str(swagger)), name="swagger")
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    return app
