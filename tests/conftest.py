"""Shared fixtures: the bundled engine, and a way to write small packs for tests."""

from __future__ import annotations

import functools
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import webapp
from argon2 import PasswordHasher
from pg_cluster import ThrowawayPostgres

import vembetalar.web.app as web_app_module
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack, load_packs


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine(load_packs())


SOURCE = "Regionen där patienten är folkbokförd betalar alltid. Ingen annan betalar något alls."


def write_pack(
    root: Path, pack_id: str, pack_yaml: str, rules_yaml: str, tests_yaml: str | None = None
) -> Path:
    """A pack folder from YAML snippets; the source text is SOURCE."""
    folder = root / pack_id
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(textwrap.dedent(pack_yaml), encoding="utf-8")
    (folder / "rules.yaml").write_text(textwrap.dedent(rules_yaml), encoding="utf-8")
    (folder / "source.txt").write_text(SOURCE, encoding="utf-8")
    if tests_yaml is not None:
        (folder / "tests.yaml").write_text(textwrap.dedent(tests_yaml), encoding="utf-8")
    return folder


def pack_header(pack_id: str, scope: str = "{kind: assistive_device}", extra: str = "") -> str:
    return f"""\
    id: {pack_id}
    title: Testavtal {pack_id}
    parties: ["region:01"]
    valid_from: null
    valid_to: null
    source: {{document: test.txt, title: Test}}
    scope: {scope}
    citations:
      betalar:
        document: test.txt
        section: "§ 1"
        quote: "Regionen där patienten är folkbokförd betalar alltid."
    {extra}
    """


# --- The case desk on a real database: SQLite and a throwaway PostgreSQL ------------------------

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayPostgres]:
    """One throwaway PostgreSQL per test session (per xdist worker), stopped at the end."""
    reason = ThrowawayPostgres.available()
    if reason is not None:
        pytest.skip(reason)
    pg = ThrowawayPostgres().start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for one test: a SQLite file, or a new database in the cluster.

    Narrow a test to one database with ``@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)``.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vembetalar.db'}"
    if request.param == "postgresql":
        pg: ThrowawayPostgres = request.getfixturevalue("pg_cluster")
        return pg.create_database(f"t_{uuid.uuid4().hex}")
    raise ValueError(f"unknown database {request.param!r}")


@functools.cache
def _cheap_password_hash() -> str:
    """A real argon2id hash of the test password, with small cost parameters.

    The app verifies it with its own verify_password (argon2 reads the cost from the hash), so
    logging in is still real argon2 — only about 1 s cheaper per app and per login on 2 cores.
    """
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(webapp.PASSWORD)


@functools.cache
def _packs_once(extra: tuple[Path, ...]) -> list[Pack]:
    return load_packs(extra)


def _faster_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webapp, "hash_password", lambda password: _cheap_password_hash())
    monkeypatch.setattr(web_app_module, "load_packs", lambda extra=(): _packs_once(tuple(extra)))


@pytest.fixture
def desk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webapp.TestApp]:
    """The real web app on ``db_url`` with the test users of tests/webapp.py and their tokens."""
    _faster_apps(monkeypatch)
    app = webapp.build_app(db_url, tmp_path)
    try:
        yield app
    finally:
        app.app.state.db_engine.dispose()  # PostgreSQL: give the connections back


@pytest.fixture(scope="module")
def shared_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webapp.TestApp]:
    """One app on SQLite for a whole module, for tests of how bad requests are refused.

    Only for tests whose requests cannot change what another test sees (no logins, no steps on
    shared cases); everything else takes a fresh ``desk``.
    """
    var = tmp_path_factory.mktemp("shared-desk")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _faster_apps(monkeypatch)
        app = webapp.build_app(f"sqlite:///{var / 'vembetalar.db'}", var)
    try:
        yield app
    finally:
        app.app.state.db_engine.dispose()
