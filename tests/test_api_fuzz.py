"""Fuzz the JSON API from its own OpenAPI description (schemathesis 4, in-process over ASGI).

Every operation gets valid and invalid requests generated from the schema, sent with a real API
token. schemathesis' default checks must hold: never a 5xx, only documented status codes, every
response (errors too) matching its documented schema and content type, schema-valid requests
accepted and schema-violating ones refused.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from webapp import TODAY, build_app

# schemathesis needs the schema when the tests are collected, so the app is built at import: on a
# throwaway SQLite file, removed when the process ends.
_ROOT = Path(tempfile.mkdtemp(prefix="vembetalar-fuzz-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
APP = build_app(f"sqlite:///{_ROOT / 'fuzz.db'}", _ROOT / "var")
atexit.register(APP.app.state.db_engine.dispose)


def _luhn(digits: str) -> int:
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (2 - i % 2)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


@st.composite
def personnummer(draw: st.DrawFn) -> str:
    """A valid personnummer or samordningsnummer (day + 60), ``ÅÅÅÅMMDD-NNNN``."""
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)))
    day = born.day + draw(st.sampled_from([0, 60]))
    serial = draw(st.integers(1, 999))  # 000 is never issued
    digits = f"{born:%y%m}{day:02d}{serial:03d}"
    return f"{born:%Y%m}{day:02d}-{serial:03d}{_luhn(digits)}"


# The schema marks patient_id with this format: the check digit is more than a pattern can say.
schemathesis.openapi.format("personnummer", personnummer())

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP.app)


def _seed_cases() -> list[str]:
    """A few real cases of lakare.vgr's organisation, so that case ids can point at something."""
    client = APP.api("lakare.vgr")
    cases = [
        {
            "kind": "drug_exception",
            "patient": {"home_region": "13"},
            "care": {"region": "14", "referral": False},
        },
        {"kind": "drug_exception", "patient": {"home_region": "13"}, "care": {"region": "14"}},
        {"kind": "assistive_device", "patient": {"home_region": "13"}, "care": {"region": "14"}},
    ]
    ids = []
    for case in cases:
        response = client.post("/api/v1/cases", json={"case": {"date": TODAY.isoformat(), **case}})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


CASE_IDS = _seed_cases()

#: Bounded and reproducible: the same cases every run (VEMBETALAR_FUZZ_EXAMPLES for a longer one).
FUZZ = settings(
    max_examples=int(os.environ.get("VEMBETALAR_FUZZ_EXAMPLES", "15")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {APP.tokens[username]}"}


@schema.parametrize()
@FUZZ
def test_api_as_prescriber(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=_bearer("lakare.vgr"))


@schema.include(method="GET").parametrize()
@FUZZ
def test_api_reads_as_admin(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=_bearer("admin.vgr"))


def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    if isinstance(path_parameters, dict) and isinstance(path_parameters.get("case_id"), str):
        return st.sampled_from(CASE_IDS).map(lambda case_id: {**path_parameters, "case_id": case_id})
    return st.just(path_parameters)


def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if isinstance(body, dict) and isinstance(body.get("case_id"), str):
        return st.sampled_from(CASE_IDS).map(lambda case_id: {**body, "case_id": case_id})
    return st.just(body)


@schema.hooks.apply(flatmap_body)
@schema.hooks.apply(flatmap_path_parameters)
@schema.include(path_regex=r"^/api/v1/(cases/\{case_id\}|payment-commitments$|events$)").parametrize()
@FUZZ
def test_api_on_real_cases(case: schemathesis.Case) -> None:
    """The same, with the case ids pointing at existing cases: steps, commitments and events."""
    case.call_and_validate(headers=_bearer("lakare.vgr"))
