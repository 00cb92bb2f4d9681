"""Hardening: server-side sessions, expiring tokens, a shared login throttle, steps taken once,
the decision history, and billable events as invoice lines with case-scoped keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = ("billable_events", "case_decisions")


def _drop_sqlite_triggers(table: str) -> None:
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def _append_only(table: str) -> None:
    """As in 0001: the database refuses UPDATE and DELETE on the table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vembetalar_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vembetalar_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("case_steps") as batch_op:
        batch_op.add_column(sa.Column("once", sa.String(length=30), nullable=True))
        batch_op.create_unique_constraint("uq_case_steps_once", ["case_id", "once"])

    op.create_table(
        "case_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.String(length=36), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("case_json", sa.JSON(), nullable=False),
        sa.Column("decision_json", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_case_decisions_case_id", "case_decisions", ["case_id"])
    _append_only("case_decisions")

    # billable_events: SQLite rebuilds the table to change a constraint, which drops its
    # triggers; they are put back afterwards.
    if sqlite:
        _drop_sqlite_triggers("billable_events")
    with op.batch_alter_table("billable_events", recreate="always" if sqlite else "auto") as batch_op:
        batch_op.drop_constraint("uq_billable_events_key", type_="unique")
        batch_op.add_column(sa.Column("varunummer", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("unit_price_sek", sa.Numeric(12, 2), nullable=True))
        batch_op.add_column(sa.Column("prescriber_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("unit_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("diarienummer", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("supersedes_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cancelled", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            "fk_billable_events_supersedes", "billable_events", ["supersedes_id"], ["id"]
        )
        batch_op.create_unique_constraint("uq_billable_events_case_key", ["case_id", "idempotency_key"])
        batch_op.create_unique_constraint("uq_billable_events_supersedes", ["supersedes_id"])
    if sqlite:
        _append_only("billable_events")


def downgrade() -> None:
    raise NotImplementedError("vembetalar migrates forward only; restore a backup to go back")
