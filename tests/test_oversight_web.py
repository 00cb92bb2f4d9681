"""The review pages for the pharmaceutical unit: who sees which flags, the status workflow with
comments (audited), republishing keeps the review, and the self-contained report."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_api import login
from test_invoice_pages import add_user
from webapp import TestApp as Desk

from vembetalar.oversight import review
from vembetalar.oversight.run import Flag
from vembetalar.store.models import AuditEntry
from vembetalar.store.oversight_models import OversightFlag

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
UNIT = "lakemedel.halland"


def _flag(rank: int, indicator: str, code: str, score: float) -> Flag:
    return Flag(
        flag_id=f"f{rank:015d}",
        rank=rank,
        entity_kind="prescriber",
        entity_code=code,
        indicator=indicator,
        score=score,
        explanation=f"förklaring {code}: 260 uttag 2024, kollegor inom vårdcentral: median 0, "
        "99:e percentil 0",
        subject="botulinum_toxin",
        peer_group="LK allmänmedicin i region 13",
        value=260.0,
        peer_n=40,
        peer_median=0.0,
        peer_p99=0.0,
        period_from="2024-01-01",
        period_to="2024-12-31",
    )


FLAGS = [
    _flag(1, "watched_volume", "1234567", 130.0),
    _flag(2, "rare_for_peers", "1234567", 80.0),
    _flag(3, "no_personnummer", "7654321", 4.2),
]
DETAIL: dict[str, Any] = {
    "series": [{"month": f"2024-{m:02d}", "n": m, "cost": 1000.0 * m} for m in range(1, 13)],
    "peers": [0.0] * 39,
    "own": 260.0,
    "unit": "uttag",
}


def _publish(desk: Desk, flags: list[Flag] = FLAGS) -> review.PublishReport:
    with desk.app.state.sessions() as db:
        return review.publish(db, "region:13", flags, {f.flag_id: DETAIL for f in flags})


def _client(desk: Desk, username: str) -> TestClient:
    client = desk.client()
    assert login(client, username).status_code == 303
    return client


def _post(client: TestClient, path: str, **data: str) -> Any:
    page = client.get("/oversight")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return client.post(path, data={"csrf": token.group(1), **data}, follow_redirects=False)


@pytest.fixture
def unit(desk: Desk) -> TestClient:
    add_user(desk, UNIT, "pharma_unit", "region:13")
    _publish(desk)
    return _client(desk, UNIT)


def test_the_unit_sees_its_ranked_flags_and_filters_them(desk: Desk, unit: TestClient) -> None:
    page = unit.get("/oversight")
    assert page.status_code == 200
    assert re.findall(r'data-flag="(\w+)"', page.text) == [f.flag_id for f in FLAGS]
    assert "260 uttag 2024, kollegor inom vårdcentral" in page.text and 'href="/oversight"' in page.text
    only = unit.get("/oversight", params={"indicator": "no_personnummer"})
    assert re.findall(r'data-flag="(\w+)"', only.text) == [FLAGS[2].flag_id]
    nonsense = unit.get("/oversight", params={"indicator": "<script>", "status": "x"})
    assert nonsense.status_code == 200 and len(re.findall(r"data-flag=", nonsense.text)) == 3


def test_other_organisations_and_roles_see_nothing(desk: Desk, unit: TestClient) -> None:
    vgr = _client(desk, "lakemedel.vgr")  # a pharmaceutical unit, but of VGR
    assert "Inga flaggor är publicerade" in vgr.get("/oversight").text
    assert vgr.get(f"/oversight/flags/{FLAGS[0].flag_id}").status_code == 404
    prescriber = _client(desk, "lakare.vgr")
    assert prescriber.get("/oversight").status_code == 403
    assert 'href="/oversight"' not in prescriber.get("/cases").text
    with desk.app.state.sessions() as db:
        actions = set(db.scalars(select(AuditEntry.action)))
    assert {"denied.forbidden", "denied.not_found"} <= actions


def test_the_review_flow_with_comments_is_audited(desk: Desk, unit: TestClient) -> None:
    path = f"/oversight/flags/{FLAGS[0].flag_id}"
    page = unit.get(path)
    assert page.status_code == 200 and 'id="plot-peers"' in page.text and "den flaggade: 260" in page.text
    refused = _post(unit, f"{path}/status", status="dismissed", comment="ingen grund")
    assert refused.status_code == 409 and "kan inte bli avskriven" in refused.text
    assert _post(unit, f"{path}/status", status="in_review").status_code == 303
    assert _post(unit, f"{path}/comment", comment="Begär journalkopior").status_code == 303
    no_reason = _post(unit, f"{path}/status", status="reported_ivo", comment="  ")
    assert no_reason.status_code == 409 and "skriv varför" in no_reason.text
    assert (
        _post(unit, f"{path}/status", status="reported_ivo", comment="Anmält, dnr 1.2-3").status_code == 303
    )
    page = unit.get(path)
    assert re.search(r'id="flag-status">anmäld till IVO<', page.text)
    assert "Begär journalkopior" in page.text and "under granskning → anmäld till IVO" in page.text
    assert unit.post(f"{path}/status", data={"status": "in_review"}).status_code == 403  # no CSRF token
    with desk.app.state.sessions() as db:
        details = [
            d
            for (a, d) in db.execute(select(AuditEntry.action, AuditEntry.detail))
            if a.startswith("oversight.")
        ]
    assert f"flagga {FLAGS[0].flag_id}: ny → under granskning" in details
    assert f"flagga {FLAGS[0].flag_id}: kommentar" in details
    assert f"flagga {FLAGS[0].flag_id}: under granskning → anmäld till IVO" in details


def test_republishing_the_same_period_keeps_the_review(desk: Desk, unit: TestClient) -> None:
    path = f"/oversight/flags/{FLAGS[0].flag_id}"
    assert _post(unit, f"{path}/status", status="in_review").status_code == 303
    moved = [_flag(1, "watched_volume", "1234567", 99.0)]
    assert _publish(desk, moved) == review.PublishReport(added=0, updated=1)
    with desk.app.state.sessions() as db:
        flag = db.scalars(select(OversightFlag).where(OversightFlag.flag_id == FLAGS[0].flag_id)).one()
    assert (flag.status, flag.score) == ("in_review", 99.0)


def test_the_report_is_one_self_contained_html_file(desk: Desk, unit: TestClient) -> None:
    response = unit.get("/oversight/report.html", params={"period": "2024-01-01–2024-12-31"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith('attachment; filename="uppfoljning-2024-01-01')
    html = response.text
    assert html.count("<svg") >= 3 * len(FLAGS) - 3  # patients/own-history have no peer plot
    assert "förklaring 1234567" in html and "Region Halland" in html
    assert "<script" not in html and not re.search(r'(src|href)="(http|/)', html)
    with desk.app.state.sessions() as db:
        assert "oversight.report" in set(db.scalars(select(AuditEntry.action)))
