"""Building the web app on a given database with known test users, for API and browser tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from vembetalar.clock import Clock
from vembetalar.security import hash_password, new_secret, token_digest
from vembetalar.store.models import ApiToken, Organisation, User
from vembetalar.web.app import create_app
from vembetalar.web.settings import Settings

PASSWORD = "rätt-häst-batteri-häftklammer"
#: The test apps' "today": fixed, so that no test depends on the calendar (agreements end).
TODAY = dt.date(2025, 9, 15)

#: username → (role, organisation)
TEST_USERS = {
    "lakare.vgr": ("prescriber", "region:14"),
    "lakemedel.vgr": ("pharma_unit", "region:14"),
    "admin.vgr": ("admin", "region:14"),
    "faktura.halland": ("invoice_clerk", "region:13"),
    "admin.halland": ("admin", "region:13"),
    "hjalpmedel.skane": ("prescriber", "region:12"),
    "mas.karlstad": ("mas", "kommun:1780"),
    "mas.arvika": ("mas", "kommun:1784"),
    "faktura.varmland": ("invoice_clerk", "region:17"),
}
ORG_NAMES = {
    "region:14": "Västra Götalandsregionen",
    "region:13": "Region Halland",
    "region:12": "Region Skåne",
    "region:17": "Region Värmland",
    "kommun:1780": "Karlstad (kommun 1780)",
    "kommun:1784": "Arvika (kommun 1784)",
}


@dataclass
class TestApp:
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        # https base URL so that the Secure session cookie is sent back, as a browser would.
        return TestClient(self.app, base_url="https://testserver")

    def api(self, username: str) -> TestClient:
        client = self.client()
        client.headers["Authorization"] = f"Bearer {self.tokens[username]}"
        return client


def build_app(database_url: str, var_dir: Path, **overrides: object) -> TestApp:
    """The real app on ``database_url`` (migrated), with TEST_USERS (password PASSWORD) and a token each."""
    settings = Settings(
        database_url=database_url,
        var_dir=var_dir,
        secret_key="test-secret-" + new_secret(8),
        clock=Clock(TODAY),
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    app = create_app(settings)
    result = TestApp(app)
    with app.state.sessions() as db:
        for org_id, name in ORG_NAMES.items():
            db.add(Organisation(id=org_id, name=name, kind=org_id.split(":")[0]))
        db.flush()
        hashed = hash_password(PASSWORD)
        for username, (role, org_id) in TEST_USERS.items():
            user = User(
                username=username, full_name=username, role=role, organisation_id=org_id, password_hash=hashed
            )
            db.add(user)
            db.flush()
            token = "vbt_" + new_secret(24)
            db.add(ApiToken(user_id=user.id, token_hash=token_digest(token), label="test"))
            result.tokens[username] = token
        db.commit()
    return result
