"""The throwaway PostgreSQL cluster helper: start, two separate databases, stop."""

from __future__ import annotations

import socket

import pytest
from pg_cluster import ThrowawayPostgres

_reason = ThrowawayPostgres.available()
if _reason is not None:
    pytest.skip(_reason, allow_module_level=True)

sqlalchemy = pytest.importorskip("sqlalchemy", reason="sqlalchemy is not installed")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_cluster_gives_separate_databases_and_stops_cleanly() -> None:
    with ThrowawayPostgres() as pg:
        assert pg.port is not None
        port = pg.port
        basedir = pg.basedir
        assert _port_open(port)

        url_a = pg.create_database("alpha")
        url_b = pg.create_database("beta")
        assert url_a == f"postgresql+psycopg://postgres@127.0.0.1:{port}/alpha"
        assert url_b == f"postgresql+psycopg://postgres@127.0.0.1:{port}/beta"

        engines = {name: sqlalchemy.create_engine(url) for name, url in (("a", url_a), ("b", url_b))}
        try:
            for name, engine in engines.items():
                with engine.begin() as conn:
                    assert conn.execute(sqlalchemy.text("select 1")).scalar_one() == 1
                    conn.execute(sqlalchemy.text("create table payer (id int primary key, name text)"))
                    conn.execute(
                        sqlalchemy.text("insert into payer values (1, :name)"), {"name": f"region-{name}"}
                    )
            with engines["a"].begin() as conn:
                conn.execute(sqlalchemy.text("create table only_in_a (x int)"))

            for name, engine in engines.items():
                with engine.connect() as conn:
                    rows = conn.execute(sqlalchemy.text("select id, name from payer order by id")).all()
                    assert [tuple(row) for row in rows] == [(1, f"region-{name}")]
                    database = conn.execute(sqlalchemy.text("select current_database()")).scalar_one()
                    assert database == {"a": "alpha", "b": "beta"}[name]
                assert sqlalchemy.inspect(engine).has_table("only_in_a") == (name == "a")
        finally:
            for engine in engines.values():
                engine.dispose()

    assert pg.start_seconds is not None and pg.stop_seconds is not None
    assert not _port_open(port)
    assert basedir is not None and not basedir.exists()
    pg.stop()  # a second stop is harmless
