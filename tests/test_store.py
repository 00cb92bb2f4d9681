"""The store on SQLite and on a real PostgreSQL: migrations, append-only tables, concurrent writes.

Data is made through the API as users would make it; the checks then go to the database itself.
Races are made deterministic by holding both sessions at their commit until both have got there.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from webapp import TestApp as Desk

from vembetalar.store import repo
from vembetalar.store.db import make_engine, migrate
from vembetalar.store.models import (
    AuditEntry,
    BillableEvent,
    CaseDecision,
    CaseRecord,
    CaseStep,
    DecisionRecord,
    User,
)
from vembetalar.workflow import EventLine

API = "/api/v1"
HALLAND_AT_VGR: dict[str, Any] = {
    "date": "2025-09-15",
    "kind": "drug_exception",
    "patient": {"home_region": "13", "home_municipality": "1380", "country": "SE"},
    "care": {"region": "14", "referral": False},
    "product": {"area": "drug", "cost_sek": 18400, "nt_council": "none"},
}
#: A Värmland patient's rollator in Skåne: VGR is no party to it.
ROLLATOR_IN_SKANE: dict[str, Any] = {
    "date": "2025-10-02",
    "kind": "assistive_device",
    "patient": {"home_region": "17", "country": "SE"},
    "care": {"region": "12"},
    "product": {"area": "mobility", "cost_sek": 3000, "advanced_adaptation": False},
}


LINE = {"occurred_on": "2025-09-15", "quantity": "2", "unit_price_sek": "50"}
#: A hearing aid in Skåne for a Värmland patient: contact and a payment commitment come first.
HEARING_AID_IN_SKANE: dict[str, Any] = {
    "date": "2025-09-01",
    "kind": "assistive_device",
    "patient": {"home_region": "17", "country": "SE"},
    "care": {"region": "12"},
    "product": {"area": "hearing", "cost_sek": 7200},
}
#: NT-rådet advised against: VGR contacts Region Halland before dispensing.
NT_ADVISED_AGAINST: dict[str, Any] = {
    **HALLAND_AT_VGR,
    "product": {"area": "drug", "cost_sek": 18400, "nt_council": "do_not_use"},
}


def new_case(desk: Desk, username: str = "lakare.vgr", case: dict[str, Any] = HALLAND_AT_VGR) -> str:
    response = desk.api(username).post(f"{API}/cases", json={"case": case, "patient_id": "701063-2391"})
    assert response.status_code == 201, response.text
    case_id: str = response.json()["id"]
    return case_id


def actor(desk: Desk, username: str) -> repo.Actor:
    with desk.app.state.sessions() as db:
        return repo.Actor.of(db.scalars(select(User).where(User.username == username)).one())


def race(*jobs: Callable[[], Any], engine: Engine) -> list[Any]:
    """Run the jobs in threads that all reach the point where they lock the case (the first
    ``UPDATE cases``) before any goes on, so each has done its reads before the others write."""
    barrier = threading.Barrier(len(jobs), timeout=20)
    waited: set[int] = set()
    lock = threading.Lock()

    def at_lock(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("UPDATE CASES"):
            return
        with lock:
            first = threading.get_ident() not in waited
            waited.add(threading.get_ident())
        if first:
            barrier.wait()

    event.listen(engine, "before_cursor_execute", at_lock)
    results: list[Any] = [None] * len(jobs)

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            results[index] = job()
        except Exception as exc:  # reported to the test, which decides
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a job hung"
    finally:
        event.remove(engine, "before_cursor_execute", at_lock)
    assert len(waited) == len(jobs), "every job reached the lock"
    return results


# -- migrations -----------------------------------------------------------------------------------


def schema_and_data(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            "unique": sorted(str(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        }
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
        else:
            triggers = conn.execute(
                text("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal")
            ).all()
        shape["(triggers)"] = sorted(tuple(t) for t in triggers)
        shape["(version)"] = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        shape["(rows)"] = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in inspector.get_table_names()
        }
    return shape


def test_migrating_again_changes_nothing(desk: Desk) -> None:
    case_id = new_case(desk)
    response = desk.api("lakare.vgr").post(
        f"{API}/cases/{case_id}/steps", json={"step": "dispensed", "line": LINE}
    )
    assert response.status_code == 200, response.text
    engine = desk.app.state.db_engine
    before = schema_and_data(engine)
    assert len(before["(triggers)"]) >= 2  # the append-only guards exist
    assert before["(rows)"]["billable_events"] == 1 and before["(rows)"]["cases"] == 1

    migrate(engine)
    migrate(engine)
    fresh = make_engine(engine.url.render_as_string(hide_password=False))  # as a restarted app would
    try:
        migrate(fresh)
        assert schema_and_data(fresh) == before
    finally:
        fresh.dispose()
    assert schema_and_data(engine) == before
    assert desk.api("lakare.vgr").get(f"{API}/cases/{case_id}").json()["state"] == "dispensed"


# -- append-only tables ---------------------------------------------------------------------------

CHANGES = {
    "billable_events": [
        "UPDATE billable_events SET amount_sek = 0",
        "UPDATE billable_events SET recipient = 'region:14' WHERE id = (SELECT min(id) FROM billable_events)",
        "DELETE FROM billable_events",
        "DELETE FROM billable_events WHERE id = (SELECT min(id) FROM billable_events)",
    ],
    "case_decisions": [
        "UPDATE case_decisions SET reason = 'ändrad'",
        "DELETE FROM case_decisions",
    ],
    "decisions": [
        "UPDATE decisions SET digest = 'x'",
        "DELETE FROM decisions",
    ],
    "audit_log": [
        "UPDATE audit_log SET username = 'someone-else'",
        "UPDATE audit_log SET detail = NULL WHERE id = (SELECT min(id) FROM audit_log)",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'case.read'",
    ],
}


@pytest.mark.parametrize("table", sorted(CHANGES))
def test_append_only_tables_refuse_update_and_delete(desk: Desk, table: str) -> None:
    client = desk.api("lakare.vgr")
    case_id = new_case(desk)
    client.get(f"{API}/cases/{case_id}")
    response = client.post(f"{API}/cases/{case_id}/steps", json={"step": "dispensed", "line": LINE})
    assert response.status_code == 200, response.text
    engine = desk.app.state.db_engine

    def rows() -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()]

    before = rows()
    assert before
    for statement in CHANGES[table]:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert rows() == before

    # Through the ORM, too.
    with desk.app.state.sessions() as db:
        model = {
            "billable_events": BillableEvent,
            "audit_log": AuditEntry,
            "case_decisions": CaseDecision,
            "decisions": DecisionRecord,
        }[table]
        row = db.scalars(select(model).order_by(model.id)).first()
        assert row is not None
        if isinstance(row, BillableEvent):
            row.amount_sek = Decimal(0)
        elif isinstance(row, DecisionRecord):
            row.digest = "x"
        elif isinstance(row, CaseDecision):
            row.reason = "ändrad"
        else:
            row.detail = "ändrad"
        with pytest.raises(DBAPIError, match="append-only"):
            db.commit()
        db.rollback()
        db.delete(db.get(model, row.id))
        with pytest.raises(DBAPIError, match="append-only"):
            db.commit()
    assert rows() == before

    # Appending still works.
    with desk.app.state.sessions() as db:
        repo.audit(db, actor(desk, "admin.vgr"), "audit.read", None, "test")
        db.commit()
    assert len(rows()) == len(before) + (table == "audit_log")


def test_events_share_their_decision_and_keep_it_when_the_case_is_decided_again(desk: Desk) -> None:
    """A case's dispensings refer to one stored decision instead of each copying it."""
    client = desk.api("lakare.vgr")
    first, second = new_case(desk), new_case(desk)
    for case_id in (first, first, second):
        response = client.post(f"{API}/cases/{case_id}/steps", json={"step": "dispensed", "line": LINE})
        assert response.status_code == 200, response.text
    with desk.app.state.sessions() as db:
        events = db.scalars(select(BillableEvent)).all()
        assert len(events) == 3 and len({e.decision_id for e in events}) == 1  # same facts, one row
        assert db.scalar(select(func.count()).select_from(DecisionRecord)) == 1
        assert all(e.decision_json is None for e in events)
        record = db.get(CaseRecord, first)
        assert record is not None and events[0].decision_data == record.decision_json


# -- concurrent writes ----------------------------------------------------------------------------


def _add_line(
    desk: Desk, who: repo.Actor, case_id: str, key: str | None, amount: str = "100.00"
) -> Callable[[], Any]:
    def job() -> Any:
        with desk.app.state.sessions() as db:
            step = "dispensed" if who.organisation_id == "region:14" else "delivered"
            line = EventLine(occurred_on=dt.date(2025, 9, 15), amount_sek=Decimal(amount))
            _, stored, created = repo.add_step(
                db, who, case_id, step, today=dt.date(2025, 9, 15), line=line, idempotency_key=key
            )
            assert stored is not None
            return stored.id, stored.case_id, created

    return job


def test_two_threads_storing_the_same_line_key_make_one_row(desk: Desk) -> None:
    case_id = new_case(desk)
    who = actor(desk, "lakare.vgr")
    job = _add_line(desk, who, case_id, "apotek-race-1")
    results = race(job, job, engine=desk.app.state.db_engine)

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(created for _, _, created in results) == [False, True]
    assert len({event_id for event_id, _, _ in results}) == 1
    with desk.app.state.sessions() as db:
        count = db.scalar(
            select(func.count())
            .select_from(BillableEvent)
            .where(BillableEvent.idempotency_key == "apotek-race-1")
        )
    assert count == 1
    # And the API agrees: one event, and the same key again answers 200 with it.
    again = desk.api("lakare.vgr").post(
        f"{API}/cases/{case_id}/events", params={"idempotency_key": "apotek-race-1"}, json=LINE
    )
    assert (again.status_code, again.json()["id"]) == (200, results[0][0])


def test_an_event_key_is_scoped_to_its_case(desk: Desk) -> None:
    """Two organisations using the same key for their own cases at once each get their own event:
    a key cannot be squatted from another case, nor tell whether that case was billed."""
    first_case = new_case(desk, "lakare.vgr")
    second_case = new_case(desk, "hjalpmedel.skane", {**ROLLATOR_IN_SKANE, "date": "2025-09-01"})
    results = race(
        _add_line(desk, actor(desk, "lakare.vgr"), first_case, "shared-key"),
        _add_line(desk, actor(desk, "hjalpmedel.skane"), second_case, "shared-key"),
        engine=desk.app.state.db_engine,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    with desk.app.state.sessions() as db:
        stored = db.scalars(select(BillableEvent).where(BillableEvent.idempotency_key == "shared-key")).all()
    assert sorted(e.case_id for e in stored) == sorted([first_case, second_case])
    assert [r[1] for r in results] == [first_case, second_case]


def _step_over_http(
    desk: Desk, case_id: str, body: dict[str, Any], username: str = "lakare.vgr"
) -> Callable[[], Any]:
    def job() -> Any:
        client = TestClient(desk.app, base_url="https://testserver", raise_server_exceptions=False)
        client.headers["Authorization"] = f"Bearer {desk.tokens[username]}"
        return client.post(f"{API}/cases/{case_id}/steps", json=body).status_code

    return job


def _count_steps(desk: Desk, case_id: str, step: str) -> int:
    with desk.app.state.sessions() as db:
        found = db.scalar(
            select(func.count())
            .select_from(CaseStep)
            .where(CaseStep.case_id == case_id, CaseStep.step == step)
        )
    return int(found or 0)


def test_two_simultaneous_contacts_are_stored_once(desk: Desk) -> None:
    case_id = new_case(desk, "lakare.vgr", NT_ADVISED_AGAINST)
    job = _step_over_http(desk, case_id, {"step": "contacted", "note": "ringt"})
    statuses = race(job, job, engine=desk.app.state.db_engine)
    assert sorted(statuses) == [200, 409]
    assert _count_steps(desk, case_id, "contacted") == 1


def test_the_database_itself_keeps_once_only_steps_unique(desk: Desk) -> None:
    """Even code that skipped the workflow could not store a second "contacted"."""
    case_id = new_case(desk, "lakare.vgr", NT_ADVISED_AGAINST)
    assert (
        desk.api("lakare.vgr").post(f"{API}/cases/{case_id}/steps", json={"step": "contacted"}).status_code
        == 200
    )
    who = actor(desk, "lakare.vgr")
    with desk.app.state.sessions() as db:
        db.add(CaseStep(case_id=case_id, step="contacted", once="contacted", user_id=who.user_id))
        with pytest.raises(IntegrityError):
            db.commit()
        db.rollback()
        # Closing and withdrawing share one slot: a case ends once.
        db.add(CaseStep(case_id=case_id, step="closed", once="ended", user_id=who.user_id))
        db.add(CaseStep(case_id=case_id, step="withdrawn", once="ended", user_id=who.user_id))
        with pytest.raises(IntegrityError):
            db.commit()


def test_two_simultaneous_dispensings_are_two_lines(desk: Desk) -> None:
    """A drug is dispensed many times: two at once are two events, each with its own step."""
    case_id = new_case(desk)
    job = _step_over_http(desk, case_id, {"step": "dispensed", "line": LINE})
    statuses = race(job, job, engine=desk.app.state.db_engine)
    assert statuses == [200, 200]
    with desk.app.state.sessions() as db:
        events = db.scalars(select(BillableEvent).where(BillableEvent.case_id == case_id)).all()
    assert len(events) == 2 and len({e.idempotency_key for e in events}) == 2
    assert _count_steps(desk, case_id, "dispensed") == 2


def test_simultaneous_lines_never_exceed_the_commitment(desk: Desk) -> None:
    skane = desk.api("hjalpmedel.skane")
    case_id = new_case(desk, "hjalpmedel.skane", HEARING_AID_IN_SKANE)
    assert skane.post(f"{API}/cases/{case_id}/steps", json={"step": "contacted"}).status_code == 200
    made = skane.post(
        f"{API}/payment-commitments",
        json={
            "case_id": case_id,
            "issuer": "region:17",
            "amount_ceiling_sek": "8000",
            "valid_from": "2025-09-01",
            "valid_to": "2025-12-31",
            "document_reference": "RV-1",
        },
    )
    assert made.status_code == 201, made.text
    who = actor(desk, "hjalpmedel.skane")
    results = race(
        _add_line(desk, who, case_id, None, "5000"),
        _add_line(desk, who, case_id, None, "5000"),
        engine=desk.app.state.db_engine,
    )
    assert sorted(type(r).__name__ for r in results) == ["StepRefused", "tuple"], results
    with desk.app.state.sessions() as db:
        total = db.scalar(select(func.sum(BillableEvent.amount_sek)).where(BillableEvent.case_id == case_id))
    assert total == Decimal("5000")


def test_a_database_from_before_the_workflow_upgrades_with_its_events_kept_append_only(db_url: str) -> None:
    """0001 → 0002 on a database with a case and an event keyed the old (global) way: the rows
    survive, the table is still append-only, and keys are now scoped to their case."""
    from alembic import command

    from vembetalar.store.db import alembic_config

    engine = make_engine(db_url)
    try:
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organisations (id, name, kind) VALUES ('region:14', 'VGR', 'region')")
            )
            conn.execute(
                text(
                    "INSERT INTO users (id, username, full_name, password_hash, role, organisation_id, "
                    "active) VALUES (1, 'u', 'U', 'x', 'prescriber', 'region:14', true)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO cases (id, reference, created_at, created_by, organisation_id, kind, "
                    "case_date, case_json, decision_json, status, state) "
                    "VALUES ('c1', 'VB-1', :at, 1, 'region:14', 'drug_exception', '2025-09-15', "
                    "'{}', '{}', 'decided', 'billable')"
                ),
                {"at": dt.datetime(2025, 9, 15, tzinfo=dt.UTC)},
            )
            conn.execute(
                text(
                    "INSERT INTO billable_events (id, idempotency_key, case_id, kind, occurred_on, "
                    "amount_sek, decision_json, created_at, created_by) "
                    "VALUES (1, 'case:c1:dispensed', 'c1', 'dispensed', "
                    "'2025-09-15', 18400, '{}', :at, 1)"
                ),
                {"at": dt.datetime(2025, 9, 15, tzinfo=dt.UTC)},
            )
        migrate(engine)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT idempotency_key, amount_sek, cancelled FROM billable_events")
            ).one()
        assert (row[0], Decimal(row[1]), bool(row[2])) == ("case:c1:dispensed", Decimal("18400"), False)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE billable_events SET amount_sek = 0"))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM billable_events"))
        with pytest.raises(IntegrityError), engine.begin() as conn:  # the same key in the same case
            conn.execute(
                text(
                    "INSERT INTO billable_events (idempotency_key, case_id, kind, occurred_on, "
                    "decision_json, created_at, created_by, cancelled) "
                    "VALUES ('case:c1:dispensed', 'c1', 'dispensed', "
                    "'2025-09-15', '{}', :at, 1, false)"
                ),
                {"at": dt.datetime(2025, 9, 16, tzinfo=dt.UTC)},
            )
    finally:
        engine.dispose()
