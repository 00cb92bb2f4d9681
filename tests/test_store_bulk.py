"""``store.bulk.insert_many`` stores exactly what SQLAlchemy's Core insert stores, on SQLite and
PostgreSQL: the million-row paths (bulk import, billed events) must not store other values than
the ordinary ones (dates, exact money, booleans, JSON null, defaults)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    insert,
    select,
    text,
)

from vembetalar.store.bulk import insert_many
from vembetalar.store.db import make_engine, session_factory

FIXED = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


def _table(name: str, metadata: MetaData) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("day", Date),
        Column("amount", Numeric(12, 2)),
        Column("quantity", Numeric(12, 3)),
        Column("cancelled", Boolean, default=False),
        Column("label", String(40)),
        Column("decision", JSON(none_as_null=True)),
        Column("document", JSON),
        Column("at", DateTime, default=lambda: FIXED),
    )


ROWS: list[dict[str, Any]] = [
    {
        "day": dt.date(2024, 5, 31),
        "amount": Decimal("1840.50"),
        "quantity": Decimal("2.5"),
        "label": "Inkontinensskydd – å",
        "decision": None,
        "document": {"lines": [1, 2], "amount": "99.50"},
    },
    {
        "day": None,
        "amount": None,
        "quantity": Decimal("3"),
        "label": None,
        "decision": {"payer": "region:13"},
        "document": None,
    },
]


def test_the_rows_stored_are_those_core_would_store(db_url: str) -> None:
    engine = make_engine(db_url)
    metadata = MetaData()
    core, bulk = _table("core_rows", metadata), _table("bulk_rows", metadata)
    metadata.create_all(engine)
    try:
        with session_factory(engine)() as db:
            db.execute(insert(core), ROWS)
            insert_many(db, bulk, ROWS)
            db.commit()
            columns = "day, amount, quantity, cancelled, label, decision, document, at"
            raw = [
                db.execute(text(f"SELECT {columns} FROM {name} ORDER BY id")).all()
                for name in (core.name, bulk.name)
            ]
            typed = [db.execute(select(t).order_by(t.c.id)).all() for t in (core, bulk)]
        assert raw[0] == raw[1]  # the driver's own values: the same text, numbers and nulls
        assert [row[1:] for row in typed[0]] == [row[1:] for row in typed[1]]
        assert typed[1][0].amount == Decimal("1840.50") and typed[1][0].cancelled is False
        assert typed[1][1].decision == {"payer": "region:13"} and typed[1][0].decision is None
    finally:
        metadata.drop_all(engine)
        engine.dispose()
