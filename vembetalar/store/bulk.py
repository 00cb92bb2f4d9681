"""Many rows of one table in one driver call, for the paths that store a million rows (the bulk
event import, the invoice run's billed events).

SQLAlchemy's Core ``insert`` with a list of parameter sets works out each row's parameters one by
one (several microseconds a row, more than SQLite takes to store it). Here the column types' own
bind processors — the same conversions Core applies, so the stored values are the same — are
looked up once and applied in a list comprehension, and the rows go to the driver's
``executemany`` as tuples. Python-side column defaults (``created_at``, ``at``) are evaluated once
per call: the rows of one call are one transaction's, made at one moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session


def insert_many(
    db: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` into ``table`` inside the session's transaction: dicts with the same keys,
    or tuples of the values of ``columns`` in that order."""
    if not rows:
        return
    connection = db.connection()
    dialect = connection.dialect
    if columns is None:
        dicts = cast(Sequence[Mapping[str, Any]], rows)
        keys = list(dicts[0])
        values_of: Sequence[Sequence[Any]] = [[row[k] for k in keys] for row in dicts]
    else:
        keys = list(columns)
        values_of = cast(Sequence[Sequence[Any]], rows)
    defaulted = [
        c
        for c in table.columns
        if c.key not in keys
        and not c.primary_key
        and c.default is not None
        and (c.default.is_scalar or c.default.is_callable)
    ]
    targets = [table.c[key] for key in keys] + defaulted
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in targets]
    fixed = [c.default.arg(None) if c.default.is_callable else c.default.arg for c in defaulted]  # type: ignore[union-attr]
    prepare = dialect.identifier_preparer
    marker = {"qmark": "?", "numeric": None}.get(dialect.paramstyle, "%s")
    if marker is None:
        raise NotImplementedError(f"paramstyle {dialect.paramstyle}")
    sql = (
        f"INSERT INTO {prepare.format_table(table)} "
        f"({', '.join(prepare.format_column(c) for c in targets)}) "
        f"VALUES ({', '.join([marker] * len(targets))})"
    )
    # A default is the same for every row: convert it once.
    fixed = [p(v) if p else v for p, v in zip(processors[len(keys) :], fixed, strict=True)]
    convert = [(i, p) for i, p in enumerate(processors[: len(keys)]) if p is not None]
    params = []
    fresh = columns is None  # the lists made above may be changed in place; the caller's may not
    for row in values_of:
        values = cast(list[Any], row) if fresh else list(row)
        for i, process in convert:
            values[i] = process(values[i])
        params.append((*values, *fixed))
    connection.exec_driver_sql(sql, params)
