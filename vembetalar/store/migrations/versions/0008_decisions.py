"""Decisions stored once (``decisions``), referred to by billable events through
``decision_id``; an event's own ``decision_json`` becomes optional (events stored before keep
theirs: the table is append-only, so nothing is rewritten).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _sqlite_append_only(table: str) -> None:
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("decision_json", sa.JSON(), nullable=False),
    )
    if sqlite:
        _sqlite_append_only("decisions")
        # SQLite rebuilds the table to change a column, which drops its triggers: put them back.
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS billable_events_no_{verb}")
    else:
        op.execute(
            "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
            "FOR EACH ROW EXECUTE FUNCTION vembetalar_append_only()"
        )
    with op.batch_alter_table("billable_events", recreate="always" if sqlite else "auto") as batch_op:
        batch_op.add_column(sa.Column("decision_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_billable_events_decision", "decisions", ["decision_id"], ["id"])
        batch_op.alter_column("decision_json", existing_type=sa.JSON(), nullable=True)
    if sqlite:
        _sqlite_append_only("billable_events")


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
