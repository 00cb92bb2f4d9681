"""Accounts outside case work: browser sessions, API tokens, passwords, deactivation, and the
failed-login counts the throttle reads.

Everything that must hold across worker processes lives in the database (DESIGN: nothing may
assume one process): a session ended here is ended for every worker, a failed login counted here
counts for every worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vembetalar.security import hash_password, token_digest
from vembetalar.store import repo
from vembetalar.store.models import ApiToken, LoginFailure, User, WebSession, utcnow

#: Tokens stored before tokens carried an expiry end this long after they were made.
LEGACY_TOKEN_DAYS = 90


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes for what we stored as UTC; PostgreSQL gives aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def session_digest(session_id: str) -> str:
    """Only the SHA-256 of a session id is stored, so a copy of the table opens no browser."""
    return hashlib.sha256(session_id.encode()).hexdigest()


# -- browser sessions ------------------------------------------------------------------------------


def start_session(db: Session, user_id: int, hours: int, now: dt.datetime | None = None) -> str:
    """A new session for the user; returns the random id the cookie carries (never stored)."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    db.add(
        WebSession(
            id_hash=session_digest(session_id),
            user_id=user_id,
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
    )
    # Sessions that ended or expired more than a day ago are of no use to anyone.
    old = now - dt.timedelta(days=1)
    db.execute(delete(WebSession).where((WebSession.expires_at < old) | (WebSession.ended_at < old)))
    return session_id


def end_session(db: Session, session_id: str) -> None:
    db.execute(
        update(WebSession)
        .where(WebSession.id_hash == session_digest(session_id), WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def end_user_sessions(db: Session, user_id: int) -> int:
    """End every open session of the user at once (password changed, user deactivated)."""
    result = db.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def user_by_name(db: Session, username: str) -> User | None:
    return db.scalars(select(User).where(User.username == username)).first()


def set_password(db: Session, user: User, password: str) -> int:
    """A new password ends every session the user had; returns how many were ended."""
    user.password_hash = hash_password(password)
    ended = end_user_sessions(db, user.id)
    repo.audit(db, repo.Actor.of(user), "password.changed", None, f"{ended} sessioner avslutade")
    return ended


def deactivate(db: Session, user: User) -> int:
    """The user can no longer log in; open sessions end now and tokens stop working (they are
    checked against ``User.active`` on every request)."""
    user.active = False
    ended = end_user_sessions(db, user.id)
    repo.audit(db, repo.Actor.of(user), "user.deactivated", None, f"{ended} sessioner avslutade")
    return ended


# -- API tokens ------------------------------------------------------------------------------------


def token_expiry(token: ApiToken) -> dt.datetime:
    if token.expires_at is not None:
        return aware(token.expires_at)
    return aware(token.created_at) + dt.timedelta(days=LEGACY_TOKEN_DAYS)


def token_usable(
    expires_at: dt.datetime | None,
    created_at: dt.datetime,
    revoked_at: dt.datetime | None,
    now: dt.datetime | None = None,
) -> bool:
    """Not revoked and not expired (a token without an expiry ends LEGACY_TOKEN_DAYS after it was made)."""
    now = now or utcnow()
    if revoked_at is not None:
        return False
    end = (
        aware(expires_at)
        if expires_at is not None
        else aware(created_at) + dt.timedelta(days=LEGACY_TOKEN_DAYS)
    )
    return now < end


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    token: str


def create_token(db: Session, user_id: int, label: str, days: int) -> NewToken:
    """A new token; the token itself is returned once and only its SHA-256 is kept."""
    token = "vbt_" + secrets.token_urlsafe(24)
    now = utcnow()
    row = ApiToken(
        user_id=user_id,
        token_hash=token_digest(token),
        label=label,
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    db.add(row)
    db.flush()
    return NewToken(row, token)


def list_tokens(db: Session, user_id: int) -> Sequence[ApiToken]:
    return db.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)).all()


def revoke_token(db: Session, token_id: int, user_id: int | None = None) -> ApiToken | None:
    """Revoke a token (only the user's own when ``user_id`` is given); None when there is none."""
    query = select(ApiToken).where(ApiToken.id == token_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    row = db.scalars(query).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


# -- audit of what was refused ---------------------------------------------------------------------


# -- failed logins ---------------------------------------------------------------------------------


def count_failures(db: Session, key: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many failures ``key`` has had since ``since``, and when the last one was."""
    count, last = db.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.key == key, LoginFailure.at >= since
        )
    ).one()
    return int(count), aware(last) if last is not None else None


def add_failures(db: Session, keys: Sequence[str], now: dt.datetime, prune_before: dt.datetime) -> None:
    for key in keys:
        db.add(LoginFailure(key=key, at=now))
    db.execute(delete(LoginFailure).where(LoginFailure.at < prune_before))


def clear_failures(db: Session, key: str) -> None:
    db.execute(delete(LoginFailure).where(LoginFailure.key == key))
