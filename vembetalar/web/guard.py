"""What every request passes before the app reads a byte of its body (plain ASGI).

- An API call must say who it is first: the bearer token or session cookie is checked from the
  headers alone, and an anonymous call is answered 401 without reading its body, so 100 MB sent
  by nobody costs us nothing. The principal found is left in ``scope["state"]`` for the route's
  dependency, which then does not look it up again.
- No body is larger than ``max_body_bytes``: a declared ``Content-Length`` above it is refused at
  once (413), a streamed body is counted as it arrives and cut off at the limit (413).
- A JSON string holding a lone UTF-16 surrogate (``"\\ud800"``) is valid JSON but no text: it
  could be neither stored nor echoed, so it is refused here as a 422 naming the field.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vembetalar.web.auth import resolve

#: API paths anyone may read: the OpenAPI description and its docs page with its files.
PUBLIC_API = ("/api/v1/openapi.json", "/api/v1/docs")
NOT_AUTHENTICATED = "inloggning eller API-token krävs"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def too_large_message(limit: int) -> str:
    return f"begäran är för stor (högst {limit} byte)"


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; the app answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_API)


def _bad_text_at(value: Any, where: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in decoded JSON a string (or key) holds a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            name = key.encode("utf-8", "replace").decode("utf-8")
            if _bad_text_at(key) is not None:
                return (*where, name)
            found = _bad_text_at(item, (*where, name))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_text_at(item, (*where, str(index)))
            if found is not None:
                return found
    return None


class RequestGuard:
    """Authentication before the body, and a bounded body (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    def _answer(
        self, scope: Scope, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        if scope["path"].startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        body = (
            f'<!doctype html><html lang="sv"><title>Fel {status}</title>'
            f'<p role="alert">{html.escape(message)}</p>'
        )
        return HTMLResponse(body, status_code=status, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path.startswith("/api/")
        if api and not _is_public(path):
            principal, _ = await resolve(Request(scope))
            if principal is None:
                response = self._answer(scope, 401, NOT_AUTHENTICATED, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._answer(scope, 413, too_large_message(self.limit))(scope, receive, send)
            return

        if api:
            await self._buffered(scope, receive, send)
        else:
            await self._counted(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """API bodies are JSON the app reads whole anyway: read them here (bounded) to look for
        lone surrogates, then hand the same bytes on."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._answer(scope, 413, too_large_message(self.limit))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _SURROGATE_ESCAPE.search(body):
            try:
                where = _bad_text_at(json.loads(body))
            except ValueError:
                where = None  # not JSON: the app says so (400)
            if where is not None:
                field = ".".join(where) or "begäran"
                message_text = f"{field}: innehåller ett ogiltigt tecken (ensamt surrogattecken i Unicode)"
                await self._answer(scope, 422, message_text)(scope, receive, send)
                return
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pages (forms) may stream; the body is counted as the app reads it and cut at the limit."""
        size = 0
        started = False

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except BodyTooLarge:
            if started:
                raise
            await self._answer(scope, 413, too_large_message(self.limit))(scope, receive, send)
