"""Who is asking: a session cookie (pages, and the API from the same browser) or an API token.

Every page and API call depends on one of these; there is no anonymous route except the login
page, the static files and the OpenAPI description with its docs page. The cookie carries only a
random session id (and the CSRF token); the session itself is a ``web_sessions`` row, so logout,
a password change or deactivation end it at once. For the API, ``guard.RequestGuard`` resolves
who is asking before any body is read and leaves the answer in ``scope["state"]`` for these
dependencies. By default every request checks the user
in the database, so a deactivated user or revoked token stops at once; a deployment that prefers
speed may set $VEMBETALAR_PRINCIPAL_TTL (seconds) to reuse a looked-up identity that long.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vembetalar.security import token_digest
from vembetalar.store.accounts import session_digest, token_usable
from vembetalar.store.models import ApiToken, Organisation, User, WebSession, utcnow

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


def _load(db_engine: Engine, kind: str, value: str) -> Principal | None:
    """One indexed lookup in plain SQL (no ORM objects): it runs on every API request.

    A token counts while it is neither revoked nor expired; a session while it has not ended
    or expired; either only while the user is active.
    """
    now = utcnow()
    base = select(*_COLUMNS).join(Organisation, Organisation.id == User.organisation_id).where(User.active)
    with db_engine.connect() as conn:
        if kind == "token":
            query = (
                base.add_columns(ApiToken.expires_at, ApiToken.created_at, ApiToken.revoked_at)
                .join(ApiToken, ApiToken.user_id == User.id)
                .where(ApiToken.token_hash == value)
            )
            found = conn.execute(query).first()
            if found is None or not token_usable(found[6], found[7], found[8], now):
                return None
            return Principal(*found[:6])
        query = base.join(WebSession, WebSession.user_id == User.id).where(
            WebSession.id_hash == value, WebSession.ended_at.is_(None), WebSession.expires_at > now
        )
        row = conn.execute(query).first()
    return Principal(*row) if row is not None else None


async def _principal(app: Any, kind: str, value: str) -> Principal | None:
    cache: PrincipalCache = app.state.principals
    key = f"{kind}:{value}"
    found, principal = cache.get(key)
    if not found:
        db_engine: Engine = app.state.db_engine
        if db_engine.dialect.name == "sqlite":
            principal = _load(db_engine, kind, value)  # a local file lookup is cheaper than a thread hop
        else:
            principal = await run_in_threadpool(_load, db_engine, kind, value)
        cache.put(key, principal)
    return principal


def session_key(session: dict[str, Any]) -> str | None:
    """The session row's key (SHA-256 of the cookie's random id), or None without one."""
    sid = session.get("sid")
    return session_digest(sid) if isinstance(sid, str) and sid else None


async def resolve(request: Request, tokens: bool = True) -> tuple[Principal | None, str]:
    """Who is asking, from the headers and the session cookie alone (the body is not read).

    Returns the principal (or None) and how: ``"token"``, ``"session"`` or ``""``. A bearer
    header that names no valid token is a failure, even when a session cookie is present.
    Pages (``tokens=False``) look at the session only. The API's answer is kept in
    ``scope["state"]`` so that the guard's lookup is not repeated by the route's dependency.
    """
    stash = request.scope.get("state", {})
    if tokens and "principal" in stash:
        return stash["principal"], stash.get("auth_kind", "")
    principal: Principal | None = None
    how = ""
    header = request.headers.get("authorization", "")
    if tokens and header.lower().startswith("bearer "):
        how = "token"
        principal = await _principal(request.app, "token", token_digest(header.split(" ", 1)[1].strip()))
    elif "session" in request.scope:
        key = session_key(request.session)
        if key is not None:
            how = "session"
            principal = await _principal(request.app, "session", key)
            if principal is None:
                request.session.clear()
    if tokens:
        stash = request.scope.setdefault("state", {})
        stash["principal"], stash["auth_kind"] = principal, how
    return principal, how


async def api_user(request: Request) -> Principal:
    principal, how = await resolve(request)
    if principal is None:
        raise NotAuthenticated()
    request.state.user = principal
    if how == "session" and request.method in UNSAFE:
        check_csrf(request, request.headers.get("x-csrf-token"))
    return principal


async def page_user(request: Request) -> Principal:
    principal, _ = await resolve(request, tokens=False)
    if principal is None:
        raise NotAuthenticated()
    request.state.user = principal
    return principal


DbDep = Annotated[Session, Depends(get_db)]
