"""`make run` seeds demo data: the printed logins and token must work, and seeding twice must not
duplicate anything or keep an old password."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from vembetalar.store.models import CaseRecord, User
from vembetalar.web.app import create_app
from vembetalar.web.demo import CASES, USERS, seed
from vembetalar.web.settings import Settings


def test_demo_logins_and_token_work_and_reseeding_rotates_passwords(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/demo.db", var_dir=tmp_path))
    with app.state.sessions() as db:
        logins, token = seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert {login.username for login in logins} == {u[0] for u in USERS}
        assert db.scalar(select(func.count()).select_from(CaseRecord)) == len(CASES)
        assert all(
            re.fullmatch(r"\d{8}-\d{4}", pid) for pid in db.scalars(select(CaseRecord.patient_id)) if pid
        )
        again, _ = seed(db, app.state.engine, dt.date(2026, 11, 27))
        assert db.scalar(select(func.count()).select_from(CaseRecord)) == len(CASES)
        assert db.scalar(select(func.count()).select_from(User)) == len(USERS)
    client = TestClient(app, base_url="https://testserver")
    cases = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert cases.status_code == 401  # the first token was replaced by the second seeding
    login = next(x for x in again if x.username == "lakare.vgr")
    old = next(x for x in logins if x.username == "lakare.vgr")
    assert login.password != old.password
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": "lakare.vgr", "password": login.password}
    response = client.post("/login", data=form, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/cases")
    listing = client.get("/cases")
    assert listing.status_code == 200
    assert "19811228-9874" in listing.text  # a prescriber sees the demo patient's number in full
