"""The review of flags: publishing a run's flags for an organisation, listing them for its
pharmaceutical unit, and the status workflow with comments — every change audited.

ny → under granskning → avskriven / anmäld till IVO / polisanmäld; a closed flag may be taken up
again (back to under granskning). Closing needs a comment saying why. Only the organisation that
owns the data sees its flags; anyone else gets "not found", as for cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vembetalar.oversight.run import Flag
from vembetalar.store import repo
from vembetalar.store.models import utcnow
from vembetalar.store.oversight_models import OversightFlag, OversightReview

STATUS_NAMES = {
    "new": "ny",
    "in_review": "under granskning",
    "dismissed": "avskriven",
    "reported_ivo": "anmäld till IVO",
    "reported_police": "polisanmäld",
}
CLOSED = ("dismissed", "reported_ivo", "reported_police")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("in_review",),
    "in_review": CLOSED,
    "dismissed": ("in_review",),
    "reported_ivo": ("in_review",),
    "reported_police": ("in_review",),
}
MAX_COMMENT = 2000


@dataclass(frozen=True)
class PublishReport:
    added: int
    updated: int


def publish(
    db: Session, organisation_id: str, flags: list[Flag], details: dict[str, dict[str, Any]]
) -> PublishReport:
    """Store a run's flags for review. The same flag_id again (a rerun of the same period) updates
    the numbers and keeps the status and the comments."""
    existing = {
        f.flag_id: f
        for f in db.scalars(
            select(OversightFlag).where(
                OversightFlag.organisation_id == organisation_id,
                OversightFlag.flag_id.in_([f.flag_id for f in flags]),
            )
        )
    }
    added = updated = 0
    for flag in flags:
        values = {
            "rank": flag.rank,
            "entity_kind": flag.entity_kind,
            "entity_code": flag.entity_code,
            "indicator": flag.indicator,
            "score": flag.score,
            "explanation": flag.explanation,
            "subject": flag.subject,
            "peer_group": flag.peer_group,
            "value": flag.value,
            "peer_n": flag.peer_n,
            "peer_median": flag.peer_median,
            "peer_p99": flag.peer_p99,
            "period_from": flag.period_from,
            "period_to": flag.period_to,
            "detail": details.get(flag.flag_id, {}),
        }
        row = existing.get(flag.flag_id)
        if row is None:
            db.add(
                OversightFlag(organisation_id=organisation_id, flag_id=flag.flag_id, status="new", **values)
            )
            added += 1
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.published_at = utcnow()
            updated += 1
    repo.audit(
        db, None, "oversight.publish", None, f"{organisation_id}: {added} nya, {updated} uppdaterade flaggor"
    )
    db.commit()
    return PublishReport(added, updated)


# ---------------------------------------------------------------- reading
@dataclass(frozen=True)
class Filters:
    period: str | None = None
    indicator: str | None = None
    entity_kind: str | None = None
    status: str | None = None
    code: str | None = None


def periods(db: Session, actor: repo.Actor) -> list[str]:
    """The organisation's published periods, newest first, as ``from–to``."""
    repo.require(actor, "oversight.read")
    rows = db.execute(
        select(OversightFlag.period_from, OversightFlag.period_to)
        .where(OversightFlag.organisation_id == actor.organisation_id)
        .group_by(OversightFlag.period_from, OversightFlag.period_to)
        .order_by(OversightFlag.period_to.desc(), OversightFlag.period_from.desc())
    ).all()
    return [f"{a}–{b}" for a, b in rows]


def list_flags(db: Session, actor: repo.Actor, filters: Filters, limit: int = 500) -> list[OversightFlag]:
    repo.require(actor, "oversight.read")
    query = select(OversightFlag).where(OversightFlag.organisation_id == actor.organisation_id)
    if filters.period and "–" in filters.period:
        start, end = filters.period.split("–", 1)
        query = query.where(OversightFlag.period_from == start, OversightFlag.period_to == end)
    if filters.indicator:
        query = query.where(OversightFlag.indicator == filters.indicator)
    if filters.entity_kind:
        query = query.where(OversightFlag.entity_kind == filters.entity_kind)
    if filters.status:
        query = query.where(OversightFlag.status == filters.status)
    if filters.code:
        query = query.where(OversightFlag.entity_code == filters.code)
    flags = list(db.scalars(query.order_by(OversightFlag.rank, OversightFlag.flag_id).limit(limit)))
    repo.audit(db, actor, "oversight.list", None, f"{len(flags)} flaggor")
    db.commit()
    return flags


def status_counts(db: Session, actor: repo.Actor, period: str | None) -> dict[str, int]:
    query = select(OversightFlag.status, func.count()).where(
        OversightFlag.organisation_id == actor.organisation_id
    )
    if period and "–" in period:
        start, end = period.split("–", 1)
        query = query.where(OversightFlag.period_from == start, OversightFlag.period_to == end)
    return {status: int(n) for status, n in db.execute(query.group_by(OversightFlag.status)).all()}


def get_flag(db: Session, actor: repo.Actor, flag_id: str, *, audit: bool = True) -> OversightFlag:
    repo.require(actor, "oversight.read")
    flag = db.scalars(
        select(OversightFlag).where(
            OversightFlag.organisation_id == actor.organisation_id, OversightFlag.flag_id == flag_id[:32]
        )
    ).first()
    if flag is None:
        raise repo.NotFound("flaggan finns inte")
    if audit:
        repo.audit(
            db,
            actor,
            "oversight.read",
            None,
            f"flagga {flag.flag_id} ({flag.entity_kind} {flag.entity_code})",
        )
        db.commit()
    return flag


def history(db: Session, flag: OversightFlag) -> list[OversightReview]:
    return list(
        db.scalars(
            select(OversightReview).where(OversightReview.flag_pk == flag.id).order_by(OversightReview.id)
        )
    )


# ---------------------------------------------------------------- changing
def _comment(text: str | None) -> str | None:
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_COMMENT:
        raise repo.StepRefused(f"kommentaren är för lång (högst {MAX_COMMENT} tecken)")
    return cleaned or None


def set_status(
    db: Session, actor: repo.Actor, flag_id: str, status: str, comment: str | None = None
) -> OversightFlag:
    """Move a flag to ``status`` (if the workflow allows it) with an optional comment; closing
    (avskriven, anmäld) needs the comment."""
    repo.require(actor, "oversight.review")
    flag = get_flag(db, actor, flag_id, audit=False)
    if status not in STATUS_NAMES:
        raise repo.StepRefused("okänd status")
    if status not in TRANSITIONS[flag.status]:
        raise repo.StepRefused(
            f"en flagga som är {STATUS_NAMES[flag.status]} kan inte bli {STATUS_NAMES[status]}"
        )
    text = _comment(comment)
    if status in CLOSED and not text:
        raise repo.StepRefused(f"skriv varför flaggan blir {STATUS_NAMES[status]}")
    before = flag.status
    flag.status = status
    flag.updated_at = utcnow()
    db.add(
        OversightReview(
            flag_pk=flag.id,
            user_id=actor.user_id,
            username=actor.username,
            status_from=before,
            status_to=status,
            comment=text,
        )
    )
    repo.audit(
        db,
        actor,
        "oversight.status",
        None,
        f"flagga {flag.flag_id}: {STATUS_NAMES[before]} → {STATUS_NAMES[status]}",
    )
    db.commit()
    return flag


def add_comment(db: Session, actor: repo.Actor, flag_id: str, comment: str) -> OversightFlag:
    repo.require(actor, "oversight.review")
    flag = get_flag(db, actor, flag_id, audit=False)
    text = _comment(comment)
    if not text:
        raise repo.StepRefused("kommentaren är tom")
    flag.updated_at = utcnow()
    db.add(OversightReview(flag_pk=flag.id, user_id=actor.user_id, username=actor.username, comment=text))
    repo.audit(db, actor, "oversight.comment", None, f"flagga {flag.flag_id}: kommentar")
    db.commit()
    return flag
