"""No internal name on any page (issue 11, item 2): every page each demo user reaches by following
links is read as a person reads it, and fails on field names, permissions, party ids, code words,
conditions written as code, file names, null/true and bits of UUIDs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from desk_crawl import Demo, crawl, demo_app, internal_names, read

from vembetalar.web.demo import USERS

#: New-case forms whose answers are no agreement, missing facts, or a refused value.
PREVIEWS = [
    {"kind": "nutrition_product", "date": "2026-11-27", "patient.home_region": "17", "care.region": "17"},
    {"kind": "medtech_product", "date": "2026-11-27"},
    {"kind": "assistive_device", "date": "2026-11-27", "care.region": "12"},
    {"kind": "assistive_device", "date": "2026-11-27", "care.region": "12", "product.cost_sek": "12.5"},
    {"kind": "drug_exception", "date": "2026-11-27", "patient.home_region": "14", "care.region": "14"},
    {"kind": "drug_exception", "date": "2027-03-01", "patient.home_region": "13", "care.region": "14"},
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    app = demo_app(tmp_path_factory.mktemp("crawl"))
    try:
        yield app
    finally:
        app.app.state.db_engine.dispose()


def test_the_token_list_catches_what_the_issue_saw() -> None:
    seen = "patient.home_region do_not_use null träffpolicy unique kind = drug_exception no_agreement"
    seen += " case.read region:14 000_e66a.txt 5f3c9a1e"
    found = " ".join(internal_names(seen))
    for token in ("patient.home_region", "do_not_use", "null", "träffpolicy", "kind = d", "no_agreement"):
        assert token in found, token
    for token in ("case.read", "region:14", "000_e66a.txt", "5f3c9a1e"):
        assert token in found, token
    swedish = "Region Halland betalar 12 000,00 kr; VB-2026-00012, 19811228-9874, ZZXXX098, lakare.vgr"
    assert internal_names(swedish) == []


@pytest.mark.parametrize("username", sorted({u[0] for u in USERS}))
def test_no_page_shows_an_internal_name(demo: Demo, username: str) -> None:
    client = demo.client(username)
    problems: list[str] = []
    pages = 0
    for path, html in crawl(client):
        pages += 1
        text, _ = read(html)
        problems += [f"{path}: {p}" for p in internal_names(text)]
    # The live decision's answers that no link leads to: no agreement, facts missing, a bad value.
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/cases/new").text)
    assert token is not None
    for form in PREVIEWS:
        response = client.post("/cases/preview", data={"csrf": token.group(1), **form})
        assert response.status_code == 200
        text, _ = read(response.text)
        problems += [f"förhandsbesked {form}: {p}" for p in internal_names(text)]
    assert pages >= 4
    assert problems == [], "\n".join(problems[:60]) + f"\n… {len(problems)} i alla"
