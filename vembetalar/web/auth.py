"""Who is asking: a session cookie (pages, and the API from the same browser) or an API token.

Every page and API call depends on one of these; there is no anonymous route except the login
page, the static files and the OpenAPI description.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from vembetalar.security import token_digest
from vembetalar.store.models import ApiToken, User
from vembetalar.store.repo import Actor

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class NotAuthenticated(Exception):
    """No valid session or token: 401 for the API, a redirect to the login page for pages."""


class CsrfFailed(Exception):
    """A form or API call with a session cookie lacked the session's CSRF token."""


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


def _user_from_token(request: Request, db: Session) -> User | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    token = header.split(" ", 1)[1].strip()
    row = db.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
    if row is None or not row.user.active:
        raise NotAuthenticated()
    return row.user


def _user_from_session(request: Request, db: Session) -> User | None:
    uid = request.session.get("uid")
    if uid is None:
        return None
    user = db.get(User, int(uid))
    if user is None or not user.active:
        request.session.clear()
        return None
    return user


def api_user(request: Request, db: Annotated[Session, Depends(get_db)]) -> User:
    user = _user_from_token(request, db)
    if user is None:
        user = _user_from_session(request, db)
        if user is not None and request.method in UNSAFE:
            check_csrf(request, request.headers.get("x-csrf-token"))
    if user is None:
        raise NotAuthenticated()
    request.state.user = user
    return user


def page_user(request: Request, db: Annotated[Session, Depends(get_db)]) -> User:
    user = _user_from_session(request, db)
    if user is None:
        raise NotAuthenticated()
    request.state.user = user
    return user


def actor_of(user: User) -> Actor:
    return Actor.of(user)
