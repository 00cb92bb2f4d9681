"""Connecting to the store: SQLite under ./var by default, PostgreSQL when
$VEMBETALAR_DATABASE_URL points at it. The schema is brought up to date with Alembic."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///var/vembetalar.db"
URL_ENV = "VEMBETALAR_DATABASE_URL"


def database_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def _private_file(path: Path) -> None:
    """The database holds personnummer: its folder is created 0700 and the file 0600 (and an
    existing file is narrowed to 0600), so other local users cannot read it. SQLite gives its
    -wal and -shm files the database file's mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif path.parent.resolve() == Path("var").resolve():
        os.chmod(path.parent, 0o700)  # ./var may have been made by `mkdir -p var` (make run)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def make_engine(url: str | None = None) -> Engine:
    """``hide_parameters``: SQL parameters (a personnummer, a note) stay out of exception texts
    and of SQLAlchemy's own log, whatever level a deployment sets on the root logger."""
    url = url or database_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            json_serializer=_json_text,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=_json_text,
    )


class PreEncodedJSON:
    """A value for a JSON column that is JSON already (bytes from orjson): stored as it is, not
    decoded and encoded again. The invoice run encodes each document once and keeps the bytes."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _json_text(value: object) -> str:
    """JSON columns encoded by orjson: invoice documents and decisions are large and many."""
    if isinstance(value, PreEncodedJSON):
        return value.data.decode()
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
