"""The organisation registry page: an admin fills in their own organisation's invoice details."""

from __future__ import annotations

from test_api import logged_in
from webapp import TestApp as Desk

from vembetalar.billing.run import registry_gaps
from vembetalar.store.models import AuditEntry, OrganisationDetails


def form(token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf": token,
        "legal_name": "Västra Götalandsregionen",
        "org_number": "999000000-3",
        "vat_id": "SE999000000301",
        "bankgiro": "5050-1055",
        "address": "Regionens hus\n462 80 Vänersborg",
        "payment_days": "30",
        **fields,
    }


def test_an_admin_fills_in_their_own_organisation_and_it_is_checked(desk: Desk) -> None:
    client, token = logged_in(desk, "admin.vgr")
    page = client.get("/admin/registry")
    assert page.status_code == 200 and "Saknas för att kunna fakturera" in page.text
    bad = client.post("/admin/registry", data=form(token, org_number="232100-0132"))
    assert bad.status_code == 422 and "org_number:" in bad.text and 'value="232100-0132"' in bad.text
    saved = client.post("/admin/registry", data=form(token), follow_redirects=False)
    assert saved.status_code == 303
    with desk.app.state.sessions() as db:
        details = db.get(OrganisationDetails, "region:14")
        assert details is not None and registry_gaps(details) == []
        assert (details.postcode, details.city) == ("462 80", "Vänersborg")
        assert db.get(OrganisationDetails, "region:13") is None  # only their own
        actions = [a.action for a in db.query(AuditEntry).filter(AuditEntry.username == "admin.vgr")]
    assert "registry.update" in actions


def test_only_admins_change_the_registry(desk: Desk) -> None:
    for username in ("lakare.vgr", "faktura.halland"):
        client, token = logged_in(desk, username)
        assert client.get("/admin/registry").status_code == 403
        assert client.post("/admin/registry", data=form(token)).status_code == 403
