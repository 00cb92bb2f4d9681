"""Who is asking: a session cookie (pages, and the API from the same browser) or an API token.

Every page and API call depends on one of these; there is no anonymous route except the login
page, the static files and the OpenAPI description. By default every request checks the user
in the database, so a deactivated user or revoked token stops at once; a deployment that prefers
speed may set $VEMBETALAR_PRINCIPAL_TTL (seconds) to reuse a looked-up identity that long.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vembetalar.security import token_digest
from vembetalar.store.models import ApiToken, Organisation, User

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class NotAuthenticated(Exception):
    """No valid session or token: 401 for the API, a redirect to the login page for pages."""


class CsrfFailed(Exception):
    """A form or API call with a session cookie lacked the session's CSRF token."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the web layer needs it: no database object crosses requests."""

    id: int
    username: str
    full_name: str
    role: str
    organisation_id: str
    organisation_name: str

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            user.id, user.username, user.full_name, user.role, user.organisation_id, user.organisation.name
        )


class PrincipalCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Principal | None]:
        if self.ttl_s <= 0:
            return False, None
        with self._lock:
            hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, principal: Principal | None) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, principal)

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def get_db(request: Request) -> Iterator[Session]:
    db: Session = request.app.state.sessions()
    try:
        yield db
    finally:
        db.close()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (also before login, for the login form)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, supplied: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not supplied or not secrets.compare_digest(str(expected), supplied):
        raise CsrfFailed()


_COLUMNS = (User.id, User.username, User.full_name, User.role, User.organisation_id, Organisation.name)


def _load(request: Request, kind: str, value: str) -> Principal | None:
    """One indexed lookup in plain SQL (no ORM objects): it runs on every API request."""
    query = select(*_COLUMNS).join(Organisation, Organisation.id == User.organisation_id).where(User.active)
    if kind == "token":
        query = query.join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.token_hash == value)
    else:
        query = query.where(User.id == int(value))
    with request.app.state.db_engine.connect() as conn:
        row = conn.execute(query).first()
    return Principal(*row) if row is not None else None


async def _principal(request: Request, kind: str, value: str) -> Principal | None:
    cache: PrincipalCache = request.app.state.principals
    key = f"{kind}:{value}"
    found, principal = cache.get(key)
    if not found:
        if request.app.state.db_engine.dialect.name == "sqlite":
            principal = _load(request, kind, value)  # a local file lookup is cheaper than a thread hop
        else:
            principal = await run_in_threadpool(_load, request, kind, value)
        cache.put(key, principal)
    return principal


async def _from_token(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    principal = await _principal(request, "token", token_digest(header.split(" ", 1)[1].strip()))
    if principal is None:
        raise NotAuthenticated()
    return principal


async def _from_session(request: Request) -> Principal | None:
    uid = request.session.get("uid")
    if uid is None:
        return None
    principal = await _principal(request, "user", str(int(uid)))
    if principal is None:
        request.session.clear()
    return principal


async def api_user(request: Request) -> Principal:
    principal = await _from_token(request)
    if principal is None:
        principal = await _from_session(request)
        if principal is not None and request.method in UNSAFE:
            check_csrf(request, request.headers.get("x-csrf-token"))
    if principal is None:
        raise NotAuthenticated()
    request.state.user = principal
    return principal


async def page_user(request: Request) -> Principal:
    principal = await _from_session(request)
    if principal is None:
        raise NotAuthenticated()
    request.state.user = principal
    return principal


DbDep = Annotated[Session, Depends(get_db)]
