"""Decisions stored once, referred to by every billable event that rests on them.

A case's thousands of dispensings share one decision; copying its 5 KB of JSON into each event
made the events table mostly decisions (5 GB per million events). The row is found by the
SHA-256 of the decision's canonical JSON, so the same decision is never stored twice, and an
event keeps the decision it was made under even when the case is completed and decided again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vembetalar.store.models import DecisionRecord


def digest_of(decision: dict[str, Any]) -> str:
    text = json.dumps(decision, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decision_id(db: Session, decision: dict[str, Any]) -> int:
    """The id of ``decision``'s row, stored now if it is new. Safe under concurrent requests: an
    insert that meets the same digest does nothing, and the row stored first is returned."""
    digest = digest_of(decision)
    found = db.scalar(select(DecisionRecord.id).where(DecisionRecord.digest == digest))
    if found is not None:
        return found
    dialect = db.get_bind().dialect.name
    values = {"digest": digest, "decision_json": decision}
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(DecisionRecord).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(DecisionRecord).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two databases we run on
        statement = insert(DecisionRecord).values(values)
    db.execute(statement)
    stored = db.scalar(select(DecisionRecord.id).where(DecisionRecord.digest == digest))
    assert stored is not None
    return stored
