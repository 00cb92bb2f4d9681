"""Oversight flags in the app database, where the pharmaceutical unit reviews them.

A flag is published by ``vembetalar oversight run --publish ORG`` (or the demo loader) under the
organisation that owns the dispensing data; publishing the same period again updates its rank,
score and explanation but never its review status or comments, which belong to ``flag_id``.
Every status change and comment is a row of ``oversight_reviews`` (and an audit entry).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vembetalar.store.models import Base, utcnow


class OversightFlag(Base):
    __tablename__ = "oversight_flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    flag_id: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int] = mapped_column(Integer)
    entity_kind: Mapped[str] = mapped_column(String(20))
    entity_code: Mapped[str] = mapped_column(String(80))
    indicator: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(80))
    peer_group: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    peer_n: Mapped[int] = mapped_column(Integer)
    peer_median: Mapped[float | None] = mapped_column(Float)
    peer_p99: Mapped[float | None] = mapped_column(Float)
    period_from: Mapped[str] = mapped_column(String(10))
    period_to: Mapped[str] = mapped_column(String(10))
    #: Time series and peer distribution for the plots, computed when published.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="new")
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("organisation_id", "flag_id", name="uq_oversight_flags_org_flag"),)


class OversightReview(Base):
    """One step of a flag's review: a status change, a comment, or both."""

    __tablename__ = "oversight_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    flag_pk: Mapped[int] = mapped_column(ForeignKey("oversight_flags.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(80))
    status_from: Mapped[str | None] = mapped_column(String(20))
    status_to: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
