"""The case's steps, route by route: ``vembetalar.workflow`` driven by the real engine's Decision.

Pure: no database, no web. Every agreement route in the bundled packs is decided by the engine
from its own ``tests.yaml`` case, wrapped in a ``CaseView`` owned by the organisation that took
the case (the treating or prescribing unit), and walked step by step: what the plan shows at the
start, what the owner's prescriber is offered before each step, what is refused and why, and
where the case stands after each step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from vembetalar.model.case import LABELS, Case
from vembetalar.model.decision import Decision
from vembetalar.rules import packtest
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs
from vembetalar.workflow import (
    STEP_NAMES,
    BadLine,
    CaseView,
    EventLine,
    Forbidden,
    StepRefused,
    allowed,
    bills,
    bills_case,
    check,
    check_ceiling,
    check_line_date,
    label,
    line_amount,
    line_step,
    offers,
    plan,
    state,
)

VGR = "vgr_halland_undantag_2023"
SKANE = "skane_hjalpmedel_utomlans"
VARMLAND = "varmland_kommun_medtech_2021"

#: Every step a user can ask for; ``offers`` only ever proposes these.
ALL_STEPS = (
    "completed",
    "contacted",
    "commitment_registered",
    "payer_rechecked",
    "registration_sent",
    "activation_requested",
    "cleared",
    "unit_named",
    "dispensed",
    "delivered",
    "closed",
    "withdrawn",
)
#: An organisation that is party to no route below.
STRANGER = "region:25"


@cache
def _engine_and_tests() -> tuple[Engine, dict[str, dict[str, Any]]]:
    packs = load_packs([])
    cases = {}
    for pack in packs:
        assert pack.tests is not None
        for test in pack.tests.cases:
            cases[f"{pack.id}/{test.name}"] = packtest.merge(pack.tests.defaults, test.case)
    return Engine(packs), cases


def decide(pack_id: str, name: str, over: dict[str, Any] | None = None) -> Decision:
    """The engine's answer for a case in a pack's tests.yaml (named by its name or a unique start
    of it), with optional further overrides."""
    engine, cases = _engine_and_tests()
    [key] = [k for k in cases if k.startswith(f"{pack_id}/{name}")]
    case = packtest.merge(cases[key], over or {})
    return engine.decide(Case.model_validate(case))


@dataclass(frozen=True)
class Stage:
    """Before the step: what the owner's prescriber is offered; then the step; then the state."""

    offered: tuple[str, ...]
    take: str
    state_after: str


@dataclass(frozen=True)
class Route:
    id: str
    pack: str
    case: str
    kind: str
    owner: str
    #: The paying organisation, where it is an organisation other than the owner.
    payer_org: str | None
    start: tuple[tuple[str, str], ...]
    walk: tuple[Stage, ...]
    bills: bool
    #: ``label("contacted", decision)``.
    contact_label: str
    over: dict[str, Any] = field(default_factory=dict)
    #: Self-care: the organisation of the unit named by ``unit_named``.
    payer_unit: str | None = None

    def decision(self) -> Decision:
        return decide(self.pack, self.case, self.over)

    def view(self, done: tuple[str, ...] = (), *, has_events: bool | None = None) -> CaseView:
        d = self.decision()
        unit = self.payer_unit if "unit_named" in done else None
        view = CaseView(kind=self.kind, decision=d, owner=self.owner, done=done, payer_unit=unit)
        if has_events is None:
            # A dispensing or delivery creates an invoice line only when someone bills someone.
            has_events = bills_case(view) and any(s in ("dispensed", "delivered") for s in done)
        return replace(view, has_events=has_events)


DRUG = "drug_exception"
DEVICE = "assistive_device"
MEDTECH = "medtech_product"
NUTRITION = "nutrition_product"


def simple_walk(line: str, *, billed: bool) -> tuple[Stage, ...]:
    """No contact, no commitment: the line step straight away, then close."""
    after_line = (line, "closed") if billed else (line, "closed", "withdrawn")
    return (
        Stage((line, "closed", "withdrawn"), line, line),
        Stage(after_line, line, line),
        Stage(after_line, "closed", "closed"),
    )


def contact_walk(line: str) -> tuple[Stage, ...]:
    """Contact first (the line step is refused until then), then the line step, then close."""
    return (
        Stage(("contacted", "closed", "withdrawn"), "contacted", "contacted"),
        Stage((line, "closed", "withdrawn"), line, line),
        Stage((line, "closed"), line, line),
        Stage((line, "closed"), "closed", "closed"),
    )


def optional_contact_walk(line: str, *, billed: bool) -> tuple[Stage, ...]:
    """A named contact that may be recorded but does not gate the line step."""
    after_line = (line, "closed") if billed else (line, "closed", "withdrawn")
    return (
        Stage(("contacted", line, "closed", "withdrawn"), line, line),
        Stage(("contacted", *after_line), "contacted", "contacted"),
        Stage(after_line, line, line),
        Stage(after_line, "closed", "closed"),
    )


def self_care_walk(line: str, *, billed: bool) -> tuple[Stage, ...]:
    """Self-care: the deciding unit is named first (the line step waits for it), then the line."""
    after_line = (line, "closed") if billed else (line, "closed", "withdrawn")
    return (
        Stage(("unit_named", "closed", "withdrawn"), "unit_named", "unit_named"),
        Stage((line, "closed", "withdrawn"), line, line),
        Stage(after_line, line, line),
        Stage(after_line, "closed", "closed"),
    )


NO_CONTACT = "Hemregionen kontaktad"
HASSEL = (
    "Kopia på beställningen skickad till Isabell Hassel, sakattestant och fakturahandläggare, Region Värmland"
)

ROUTES = [
    # --- VGR – Region Halland, drug exceptions (seed 000) ---------------------------------------
    Route(
        id="vgr-bilaga-1-vgr-patient-in-halland",
        pack=VGR,
        case="VGR-patient i Region Halland utan remiss (valfrihetsvård)",
        kind=DRUG,
        owner="region:13",
        payer_org="region:14",
        start=(("decided", "done"), ("dispensed", "next")),
        walk=simple_walk("dispensed", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="vgr-bilaga-2-halland-patient-in-vgr",
        pack=VGR,
        case="Hallandspatient i VGR utan remiss (valfrihetsvård)",
        kind=DRUG,
        owner="region:14",
        payer_org="region:13",
        start=(("decided", "done"), ("dispensed", "next")),
        walk=simple_walk("dispensed", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="vgr-bilaga-3-halland-referred-to-vgr",
        pack=VGR,
        case="Hallandspatient remitterad till VGR (regionsjukvård)",
        kind=DRUG,
        owner="region:14",
        payer_org="region:13",
        start=(("decided", "done"), ("dispensed", "next")),
        walk=simple_walk("dispensed", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="vgr-bilaga-3-nt-use-no-contact",
        pack=VGR,
        case="NT-rådet rekommenderar användning – ingen förhandskontakt",
        kind=DRUG,
        owner="region:14",
        payer_org="region:13",
        start=(("decided", "done"), ("dispensed", "next")),
        walk=simple_walk("dispensed", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="vgr-bilaga-2-nt-do-not-use-contact-halland",
        pack=VGR,
        case="NT-rådet avråder – kontakta Region Halland innan behandling",
        kind=DRUG,
        owner="region:14",
        payer_org="region:13",
        start=(("decided", "done"), ("contacted", "next"), ("dispensed", "waiting")),
        walk=contact_walk("dispensed"),
        bills=True,
        contact_label="Kontakt tagen med Region Halland",
    ),
    Route(
        id="vgr-bilaga-1-nt-await-contact-vgr",
        pack=VGR,
        case="NT-rådet säger avvakta – VGR-patient i Halland, kontakta VGR först",
        kind=DRUG,
        owner="region:13",
        payer_org="region:14",
        start=(("decided", "done"), ("contacted", "next"), ("dispensed", "waiting")),
        walk=contact_walk("dispensed"),
        bills=True,
        contact_label="Kontakt tagen med Västra Götalandsregionen",
    ),
    Route(
        id="vgr-bilaga-3-nt-do-not-use-contact-halland",
        pack=VGR,
        case="Hallandspatient remitterad till VGR (regionsjukvård)",
        over={"product": {"nt_council": "do_not_use"}},
        kind=DRUG,
        owner="region:14",
        payer_org="region:13",
        start=(("decided", "done"), ("contacted", "next"), ("dispensed", "waiting")),
        walk=contact_walk("dispensed"),
        bills=True,
        contact_label="Kontakt tagen med Region Halland",
    ),
    Route(
        id="vgr-patient-referred-to-halland-principles",
        pack=VGR,
        case="VGR-patient remitterad till Region Halland – ingen bilaga",
        kind=DRUG,
        owner="region:13",
        payer_org="region:14",
        start=(("decided", "done"), ("dispensed", "next")),
        walk=simple_walk("dispensed", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="vgr-patient-referred-to-halland-nt-do-not-use",
        pack=VGR,
        case="VGR-patient remitterad till Halland, NT-rådet avråder – förhandskontakten finns kvar",
        kind=DRUG,
        owner="region:13",
        payer_org="region:14",
        start=(("decided", "done"), ("contacted", "next"), ("dispensed", "waiting")),
        walk=contact_walk("dispensed"),
        bills=True,
        contact_label="Kontakt tagen med Västra Götalandsregionen",
    ),
    # --- Region Skåne, assistive devices for patients from elsewhere (seed 001) ----------------
    Route(
        id="skane-under-limit-rollator",
        pack=SKANE,
        case="Värmlänning får rollator i Malmö för 4 500 kr",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:17",
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="skane-exactly-10000-contact-home-region",
        pack=SKANE,
        case="Gränsfall exakt 10 000 kr – kontakta hemregionen (försiktig tolkning)",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:17",
        start=(("decided", "done"), ("contacted", "next"), ("delivered", "waiting")),
        walk=contact_walk("delivered"),
        bills=True,
        contact_label="Kontakt tagen med Region Värmland",
    ),
    Route(
        id="skane-over-limit-contact-home-region",
        pack=SKANE,
        case="Över 10 000 kr – överenskommelse; hemregionen hyr eller köper, beslutande part öppen",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:17",
        start=(("decided", "done"), ("contacted", "next"), ("delivered", "waiting")),
        walk=contact_walk("delivered"),
        bills=True,
        contact_label="Kontakt tagen med Region Värmland",
    ),
    Route(
        id="skane-advanced-adaptation-powered-wheelchair",
        pack=SKANE,
        case="Eldriven rullstol som kräver avancerad anpassning, 8 000 kr",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:01",
        start=(("decided", "done"), ("contacted", "next"), ("delivered", "waiting")),
        walk=contact_walk("delivered"),
        bills=True,
        contact_label="Kontakt tagen med Region Stockholm",
    ),
    Route(
        id="skane-hearing-aid-contact-then-commitment",
        pack=SKANE,
        case="Hörapparat till hallänning – betalningsförbindelse krävs",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:13",
        start=(
            ("decided", "done"),
            ("contacted", "next"),
            ("commitment_registered", "waiting"),
            ("delivered", "waiting"),
        ),
        walk=(
            Stage(("contacted", "closed", "withdrawn"), "contacted", "contacted"),
            Stage(
                ("commitment_registered", "closed", "withdrawn"),
                "commitment_registered",
                "commitment_registered",
            ),
            Stage(("delivered", "closed", "withdrawn"), "delivered", "delivered"),
            Stage(("delivered", "closed"), "closed", "closed"),
        ),
        bills=True,
        contact_label="Kontakt tagen med Region Halland",
    ),
    Route(
        id="skane-sesam-lmn-diabetes-under-limit",
        pack=SKANE,
        case="Diabeteshjälpmedel – registrering i Sesam LMN före utlämning",
        kind=DEVICE,
        owner="region:12",
        payer_org="region:17",
        start=(
            ("decided", "done"),
            ("registration_sent", "next"),
            ("activation_requested", "optional"),
            ("cleared", "next"),
            ("delivered", "waiting"),
        ),
        walk=(
            Stage(
                ("registration_sent", "activation_requested", "cleared", "closed", "withdrawn"),
                "registration_sent",
                "registration_sent",
            ),
            Stage(("cleared", "closed", "withdrawn"), "cleared", "cleared"),
            Stage(("delivered", "closed", "withdrawn"), "delivered", "delivered"),
            Stage(("delivered", "closed"), "closed", "closed"),
        ),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    # --- Region Värmland and its kommuner, medtech and SärNär (seed 004) -----------------------
    Route(
        id="varmland-home-care-region-annex-kommun-invoices",
        pack=VARMLAND,
        case="Hemsjukvård – produktbilagan lägger produkten på regionen",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org="region:17",
        start=(("decided", "done"), ("contacted", "optional"), ("delivered", "next")),
        walk=optional_contact_walk("delivered", billed=True),
        bills=True,
        contact_label=HASSEL,
    ),
    Route(
        id="varmland-special-housing-other-product-kommun-invoices",
        pack=VARMLAND,
        case="Särskilt boende – övrig ordinerad produkt, regionen betalar",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org="region:17",
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="varmland-short-term-stay-kommun-invoices",
        pack=VARMLAND,
        case="Korttidsplats utan hemsjukvård – regionen betalar, kommunen fakturerar och mejlar kopia",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org="region:17",
        start=(("decided", "done"), ("contacted", "optional"), ("delivered", "next")),
        walk=optional_contact_walk("delivered", billed=True),
        bills=True,
        contact_label=HASSEL,
    ),
    Route(
        id="varmland-home-care-kommun-pays-itself",
        pack=VARMLAND,
        case="Hemsjukvård i tre veckor – kommunen betalar produkt som bilagan lägger på kommunen",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org=None,
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=False),
        bills=False,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="varmland-sarnar-short-term-kommun-pays-itself",
        pack=VARMLAND,
        case="Korttidsplats för hemsjukvårdspatient med SärNär – kommunen, patienten tar med produkterna",
        kind=NUTRITION,
        owner="kommun:1780",
        payer_org=None,
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=False),
        bills=False,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="varmland-ordinary-housing-region-pays-itself",
        pack=VARMLAND,
        case="Ordinärt boende utan hemsjukvård – regionen betalar, oavsett produktbilagan",
        kind=MEDTECH,
        owner="region:17",
        payer_org=None,
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=False),
        bills=False,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="varmland-discharge-region-week-then-kommun",
        pack=VARMLAND,
        case="Utskrivning till särskilt boende, kommunen saknar produkten",
        kind=MEDTECH,
        owner="region:17",
        payer_org=None,
        start=(("decided", "done"), ("delivered", "next")),
        walk=simple_walk("delivered", billed=False),
        bills=False,
        contact_label=NO_CONTACT,
    ),
    Route(
        id="varmland-self-care-region-unit-pays",
        pack=VARMLAND,
        case="Egenvård – enheten som beslutat om egenvård betalar",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org="region:17",
        start=(("decided", "done"), ("unit_named", "next"), ("delivered", "waiting")),
        walk=self_care_walk("delivered", billed=True),
        bills=True,
        contact_label=NO_CONTACT,
        payer_unit="region:17",
    ),
    Route(
        id="varmland-self-care-kommun-unit-keeps-the-cost",
        pack=VARMLAND,
        case="Egenvård – enheten som beslutat om egenvård betalar",
        kind=MEDTECH,
        owner="kommun:1780",
        payer_org=None,
        start=(("decided", "done"), ("unit_named", "next"), ("delivered", "waiting")),
        walk=self_care_walk("delivered", billed=False),
        bills=False,
        contact_label=NO_CONTACT,
        payer_unit="kommun:1780",
    ),
]
ROUTE_PARAMS = [pytest.param(r, id=r.id) for r in ROUTES]
CONTACT_ROUTES = [pytest.param(r, id=r.id) for r in ROUTES if r.walk[0].take == "contacted"]
PAID_BY_OTHER = [pytest.param(r, id=r.id) for r in ROUTES if r.payer_org is not None]


def marks(view: CaseView) -> list[tuple[str, str]]:
    return [(p.step, p.mark) for p in plan(view)]


def refusal(view: CaseView, step: str, *, organisation: str, role: str = "prescriber") -> Exception:
    """The exception ``check`` raises (the test fails if it raises none)."""
    with pytest.raises((Forbidden, StepRefused)) as info:
        check(view, step, organisation=organisation, role=role)
    return info.value


# --- Each route: the decision it rests on --------------------------------------------------------


def test_every_route_is_decided_without_missing_facts() -> None:
    """The routes are the agreements' settled situations; the unsettled ones are tested below."""
    for route in ROUTES:
        d = route.decision()
        assert (route.id, d.status, d.missing) == (route.id, "decided", [])
        assert (route.id, bills_case(route.view(("unit_named",)))) == (route.id, route.bills)


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_plan_at_the_start(route: Route) -> None:
    view = route.view()
    assert marks(view) == list(route.start)
    assert state(view) == "decided"
    steps = {p.step: p for p in plan(view)}
    assert steps["decided"].label == "Beslut fattat"
    if "contacted" in steps:
        assert steps["contacted"].label == route.contact_label


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_walk_offers_and_state_after_each_step(route: Route) -> None:
    """Before each step the owner's prescriber is offered exactly these steps, in the agreement's
    order; every other step is refused as "not now" (StepRefused), never as "not you"."""
    done: tuple[str, ...] = ()
    for stage in route.walk:
        view = route.view(done)
        assert (done, offers(view, organisation=route.owner, role="prescriber")) == (
            done,
            list(stage.offered),
        )
        for step in ALL_STEPS:
            if step not in stage.offered:
                assert isinstance(refusal(view, step, organisation=route.owner), StepRefused), (done, step)
            assert allowed(view, step, organisation=route.owner, role="prescriber") is (step in stage.offered)
        check(view, stage.take, organisation=route.owner, role="prescriber")
        done = (*done, stage.take)
        assert (done, state(route.view(done))) == (done, stage.state_after)
    final = route.view(done)
    assert offers(final, organisation=route.owner, role="prescriber") == []
    assert state(final) == "closed"


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_line_step_is_dispensed_for_drugs_and_delivered_otherwise(route: Route) -> None:
    right = "dispensed" if route.kind == DRUG else "delivered"
    wrong = "delivered" if right == "dispensed" else "dispensed"
    assert line_step(route.kind) == right
    # Everything the agreement demands first is done, so only the kind decides.
    view = route.view(("contacted", "commitment_registered", "unit_named", "cleared"))
    assert allowed(view, right, organisation=route.owner, role="prescriber")
    error = refusal(view, wrong, organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert STEP_NAMES[right] in str(error)
    assert plan(route.view())[-1].step == right


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_line_step_explains_when_nothing_is_billed(route: Route) -> None:
    line = plan(route.view(("contacted", "commitment_registered", "unit_named", "cleared")))[-1]
    assert line.mark == "next"
    if route.bills:
        assert line.why is None
    else:
        assert line.why is not None
        assert "inget fakturaunderlag" in line.why


# --- Who may take a step -------------------------------------------------------------------------


@pytest.mark.parametrize("route", PAID_BY_OTHER)
def test_payer_does_not_drive_the_invoicers_work(route: Route) -> None:
    """The payer reads; its invoice clerk (or prescriber) is offered nothing and refused as "not you"."""
    view = route.view()
    for role in ("invoice_clerk", "prescriber"):
        assert offers(view, organisation=route.payer_org, role=role) == []
    for step in ("contacted", "commitment_registered", line_step(route.kind)):
        error = refusal(view, step, organisation=route.payer_org, role="invoice_clerk")
        assert isinstance(error, Forbidden), step
        assert "förskrivande enheten" in str(error)


@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_another_organisation_is_forbidden(route: Route) -> None:
    view = route.view()
    for step in ALL_STEPS:
        error = refusal(view, step, organisation=STRANGER)
        assert isinstance(error, Forbidden), step
    assert offers(view, organisation=STRANGER, role="prescriber") == []


@pytest.mark.parametrize("role", ["admin", "pharma_unit"])
@pytest.mark.parametrize("route", ROUTE_PARAMS)
def test_roles_without_step_permissions_are_offered_nothing(route: Route, role: str) -> None:
    view = route.view()
    assert offers(view, organisation=route.owner, role=role) == []
    for step in ALL_STEPS:
        error = refusal(view, step, organisation=route.owner, role=role)
        assert isinstance(error, Forbidden), step
        assert f"rollen {role}" in str(error)


@pytest.mark.parametrize(
    ("role", "step", "permission"),
    [
        pytest.param("invoice_clerk", "closed", "case.create", id="clerk-cannot-close"),
        pytest.param("invoice_clerk", "withdrawn", "case.create", id="clerk-cannot-withdraw"),
        pytest.param(
            "mas", "commitment_registered", "commitment.create", id="mas-cannot-register-commitment"
        ),
        pytest.param("pharma_unit", "contacted", "case.step", id="pharma-unit-cannot-contact"),
    ],
)
def test_role_without_permission_is_forbidden(role: str, step: str, permission: str) -> None:
    route = next(r for r in ROUTES if r.id == "skane-hearing-aid-contact-then-commitment")
    view = route.view(("contacted",))
    error = refusal(view, step, organisation=route.owner, role=role)
    assert isinstance(error, Forbidden)
    assert str(error) == f"rollen {role} får inte göra detta ({permission})"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        pytest.param("prescriber", ["commitment_registered", "closed", "withdrawn"], id="prescriber"),
        pytest.param("invoice_clerk", ["commitment_registered"], id="invoice-clerk"),
        pytest.param("mas", ["closed", "withdrawn"], id="mas"),
    ],
)
def test_owner_roles_split_the_steps(role: str, expected: list[str]) -> None:
    """The prescribing unit's own staff: the clerk may register the commitment but not end the case."""
    route = next(r for r in ROUTES if r.id == "skane-hearing-aid-contact-then-commitment")
    assert offers(route.view(("contacted",)), organisation=route.owner, role=role) == expected


def test_who_is_checked_before_when() -> None:
    """A closed case still answers "not you" to another organisation, and "not now" to the owner."""
    route = ROUTES[0]
    view = route.view(("closed",))
    assert isinstance(refusal(view, "closed", organisation=STRANGER), Forbidden)
    assert isinstance(refusal(view, "closed", organisation=route.owner), StepRefused)


def test_unknown_step_is_refused_naming_the_allowed_ones() -> None:
    error = refusal(ROUTES[0].view(), "paid", organisation=ROUTES[0].owner)
    assert isinstance(error, StepRefused)
    assert "'paid'" in str(error)
    assert "contacted" in str(error)


# --- The order the agreement demands -------------------------------------------------------------


@pytest.mark.parametrize("route", CONTACT_ROUTES)
def test_line_step_refused_until_contacted(route: Route) -> None:
    line = line_step(route.kind)
    error = refusal(route.view(), line, organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert f"«{route.contact_label}» ska registreras innan behandling eller utlämning" in str(error)
    assert allowed(route.view(("contacted",)), line, organisation=route.owner, role="prescriber") is (
        route.decision().payment_commitment_required is False
    )


def test_hearing_aid_commitment_refused_before_contact_and_delivery_before_commitment() -> None:
    """Seed 001: the prescriber gets approval from the home region, the home region issues a
    payment commitment, the prescribing unit keeps it; "Därefter kan du förskriva"."""
    route = next(r for r in ROUTES if r.id == "skane-hearing-aid-contact-then-commitment")
    owner = route.owner
    error = refusal(route.view(), "commitment_registered", organisation=owner)
    assert isinstance(error, StepRefused)
    assert str(error) == "registrera «Kontakt tagen med Region Halland» först"

    error = refusal(route.view(("contacted",)), "delivered", organisation=owner)
    assert isinstance(error, StepRefused)
    assert "betalningsförbindelse" in str(error)

    assert marks(route.view(("contacted",))) == [
        ("decided", "done"),
        ("contacted", "done"),
        ("commitment_registered", "next"),
        ("delivered", "waiting"),
    ]
    assert marks(route.view(("contacted", "commitment_registered", "unit_named", "cleared"))) == [
        ("decided", "done"),
        ("contacted", "done"),
        ("commitment_registered", "done"),
        ("delivered", "next"),
    ]
    assert plan(route.view())[2].why == "tas efter «Kontakt tagen med Region Halland»"
    assert plan(route.view())[2].label == "Betalningsförbindelse registrerad"


@pytest.mark.parametrize(
    ("route_id", "step", "message"),
    [
        pytest.param(
            "vgr-bilaga-2-halland-patient-in-vgr",
            "contacted",
            "beslutet kräver ingen kontakt före behandling eller utlämning",
            id="contact-not-required",
        ),
        pytest.param(
            "vgr-bilaga-2-halland-patient-in-vgr",
            "commitment_registered",
            "beslutet kräver ingen betalningsförbindelse",
            id="commitment-not-required-vgr",
        ),
        pytest.param(
            "skane-over-limit-contact-home-region",
            "commitment_registered",
            "beslutet kräver ingen betalningsförbindelse",
            id="commitment-not-required-over-limit",
        ),
        pytest.param(
            "varmland-home-care-kommun-pays-itself",
            "contacted",
            "beslutet kräver ingen kontakt före behandling eller utlämning",
            id="contact-not-required-kommun",
        ),
    ],
)
def test_steps_the_decision_does_not_call_for_are_refused(route_id: str, step: str, message: str) -> None:
    route = next(r for r in ROUTES if r.id == route_id)
    error = refusal(route.view(), step, organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert str(error) == message


@pytest.mark.parametrize(
    ("route_id", "expected"),
    [
        pytest.param(
            "vgr-bilaga-2-nt-do-not-use-contact-halland", "Kontakt tagen med Region Halland", id="vgr"
        ),
        pytest.param(
            "skane-advanced-adaptation-powered-wheelchair", "Kontakt tagen med Region Stockholm", id="skane"
        ),
        pytest.param("vgr-bilaga-2-halland-patient-in-vgr", "Hemregionen kontaktad", id="no-contact-named"),
    ],
)
def test_contact_is_named_after_whom(route_id: str, expected: str) -> None:
    route = next(r for r in ROUTES if r.id == route_id)
    assert label("contacted", route.decision()) == expected
    assert label("contacted") == "Hemregionen kontaktad"
    assert label("commitment_registered", route.decision()) == "Betalningsförbindelse registrerad"


# --- Patients abroad (seed 001: VO Hjälpmedel) ---------------------------------------------------

ABROAD = [
    pytest.param("Dansk turist bryter benet – regler för EU/EES-land, betalaren anges inte", id="eu-ees-dk"),
    pytest.param("Schweizisk patient", id="eu-ees-ch"),
    pytest.param("Amerikansk turist utan svenskt medborgarskap", id="outside-ees"),
    pytest.param("Utlandssvensk i Thailand, tidigare folkbokförd i Halland", id="swede-abroad"),
]
VO_HJALPMEDEL = "Kontakt tagen med VO Hjälpmedel, Region Skåne (patienter som bor i andra länder)"


def abroad_view(name: str, done: tuple[str, ...] = ()) -> CaseView:
    return CaseView(kind=DEVICE, decision=decide(SKANE, name), owner="region:12", done=done)


@pytest.mark.parametrize("name", ABROAD)
def test_abroad_contact_is_vo_hjalpmedel_and_nothing_is_billed(name: str) -> None:
    view = abroad_view(name)
    d = view.decision
    assert (d.status, d.payer, d.invoicer) == ("decided", None, None)
    assert bills(d) is False
    assert label("contacted", d) == VO_HJALPMEDEL
    assert [p.label for p in plan(view) if p.step == "contacted"] == [VO_HJALPMEDEL]
    assert "contacted" in offers(view, organisation="region:12", role="prescriber")
    check(view, "contacted", organisation="region:12", role="prescriber")
    after = abroad_view(name, ("contacted",))
    assert state(after) == "contacted"
    error = refusal(after, "contacted", organisation="region:12")
    assert isinstance(error, StepRefused)
    assert VO_HJALPMEDEL in str(error)
    assert "delivered" not in offers(after, organisation="region:12", role="prescriber")
    cleared = abroad_view(name, ("contacted", "cleared"))
    assert "delivered" in offers(cleared, organisation="region:12", role="prescriber")
    assert plan(cleared)[-1].why is not None
    assert "inget fakturaunderlag" in (plan(cleared)[-1].why or "")


SESAM_REASON = (
    "Du kan inte lämna ut något hjälpmedel till patienten förrän VO Hjälpmedel har gett klartecken "
    "och patienten finns registrerad"
)


@pytest.mark.parametrize("name", ABROAD)
def test_abroad_delivery_waits_for_vo_hjalpmedels_go_ahead(name: str) -> None:
    """Seed 001, patient abroad: «Du kan inte lämna ut något hjälpmedel till patienten förrän VO
    Hjälpmedel har gett klartecken och patienten finns registrerad.» No registration request is
    described for the Sesam systems abroad (checklista och intyg), so the go-ahead is the gate."""
    view = abroad_view(name)
    assert offers(view, organisation="region:12", role="prescriber") == [
        "contacted",
        "cleared",
        "closed",
        "withdrawn",
    ]
    assert marks(view) == [
        ("decided", "done"),
        ("contacted", "optional"),
        ("cleared", "next"),
        ("delivered", "waiting"),
    ]
    error = refusal(view, "delivered", organisation="region:12")
    assert isinstance(error, StepRefused) and SESAM_REASON in str(error)
    assert allowed(abroad_view(name, ("cleared",)), "delivered", organisation="region:12", role="prescriber")


SESAM_LMN = [
    pytest.param("Diabeteshjälpmedel – registrering i Sesam LMN före utlämning", id="diabetes"),
    pytest.param("Inaktiverad patient i Sesam LMN – ring för aktivering", id="nutrition"),
]


@pytest.mark.parametrize("name", SESAM_LMN)
def test_sesam_lmn_delivery_waits_for_the_go_ahead_quoting_the_agreement(name: str) -> None:
    """«… förrän VO Hjälpmedel har gett klartecken och patienten finns registrerad i Sesam.»"""
    view = CaseView(kind=DEVICE, decision=decide(SKANE, name), owner="region:12", done=())
    assert not allowed(view, "delivered", organisation="region:12", role="prescriber")
    assert plan(view)[-1].mark == "waiting"
    error = refusal(view, "delivered", organisation="region:12")
    assert isinstance(error, StepRefused) and f"{SESAM_REASON} i Sesam." in str(error)
    cleared = replace(view, done=("registration_sent", "cleared"))
    assert allowed(cleared, "delivered", organisation="region:12", role="prescriber")
    assert label("cleared", view.decision) == "Registrerad i Sesam LMN – klartecken från VO Hjälpmedel"


@pytest.mark.parametrize("name", SESAM_LMN)
def test_an_inactivated_patient_is_activated_by_phone_instead_of_registered_again(name: str) -> None:
    view = CaseView(kind=DEVICE, decision=decide(SKANE, name), owner="region:12", done=())
    (activation,) = [p for p in plan(view) if p.step == "activation_requested"]
    assert "ring Hjälpmedel Kundtjänst (0770-11 11 00) för aktivering" in (activation.why or "")
    asked = replace(view, done=("activation_requested",))
    assert [p.step for p in plan(asked)][1:3] == ["activation_requested", "cleared"]
    assert "registration_sent" not in offers(asked, organisation="region:12", role="prescriber")
    error = refusal(asked, "registration_sent", organisation="region:12")
    assert isinstance(error, StepRefused) and "aktivering är redan begärd" in str(error)
    sent = replace(view, done=("registration_sent",))
    assert "activation_requested" not in offers(sent, organisation="region:12", role="prescriber")


@pytest.mark.parametrize("name", SESAM_LMN)
def test_a_returning_patient_has_the_payer_checked_again_first(name: str) -> None:
    """«Du som förskrivare ska på nytt kontrollera vilken region som ska betala om patienten
    återkommer vid annat tillfälle och behöver ett nytt hjälpmedel.»"""
    view = CaseView(kind=DEVICE, decision=decide(SKANE, name), owner="region:12", done=(), returning=True)
    assert offers(view, organisation="region:12", role="prescriber") == [
        "payer_rechecked",
        "closed",
        "withdrawn",
    ]
    first = plan(view)[1]
    assert (first.step, first.mark) == ("payer_rechecked", "next")
    assert "kontrollera på nytt vilken region som ska betala" in (first.why or "")
    error = refusal(view, "cleared", organisation="region:12")
    assert isinstance(error, StepRefused) and "kontrollera på nytt" in str(error)
    checked = replace(view, done=("payer_rechecked",))
    assert "activation_requested" in offers(checked, organisation="region:12", role="prescriber")
    # A first-time patient is never asked to recheck.
    new = replace(view, returning=False)
    assert isinstance(refusal(new, "payer_rechecked", organisation="region:12"), StepRefused)


def test_go_ahead_steps_are_refused_where_the_agreement_asks_for_none() -> None:
    view = CaseView(
        kind=DEVICE,
        decision=decide(SKANE, "Värmlänning får rollator i Malmö för 4 500 kr"),
        owner="region:12",
        done=(),
    )
    for step in ("registration_sent", "activation_requested", "cleared", "payer_rechecked"):
        error = refusal(view, step, organisation="region:12")
        assert isinstance(error, StepRefused) and "inget klartecken" in str(error), step


# --- Decisions that name missing facts -----------------------------------------------------------


@dataclass(frozen=True)
class Open:
    id: str
    pack: str
    case: str
    kind: str
    owner: str
    missing: tuple[str, ...]
    start: tuple[tuple[str, str], ...]
    offered: tuple[str, ...]
    #: The line step's refusal, in words.
    line_waits: str
    over: dict[str, Any] = field(default_factory=dict)

    def view(self, done: tuple[str, ...] = ()) -> CaseView:
        d = decide(self.pack, self.case, self.over)
        return CaseView(kind=self.kind, decision=d, owner=self.owner, done=done)


OPEN = [
    Open(
        id="vgr-bilaga-2-nt-council-unknown",
        pack=VGR,
        case="NT-rådets yttrande okänt – betalaren står fast, förhandskontakten är öppen",
        kind=DRUG,
        owner="region:14",
        missing=("product.nt_council",),
        start=(
            ("decided", "done"),
            ("completed", "next"),
            ("contacted", "waiting"),
            ("dispensed", "waiting"),
        ),
        offered=("completed", "closed", "withdrawn"),
        line_waits="om kontakt krävs avgörs först när NT-rådets yttrande är ifyllt",
    ),
    Open(
        id="skane-advanced-adaptation-unknown",
        pack=SKANE,
        case="4 500 kr och okänt om avancerad anpassning krävs – betalaren står fast, kontakten är öppen",
        kind=DEVICE,
        owner="region:12",
        missing=("product.advanced_adaptation",),
        start=(
            ("decided", "done"),
            ("completed", "next"),
            ("contacted", "waiting"),
            ("delivered", "waiting"),
        ),
        offered=("completed", "closed", "withdrawn"),
        line_waits="om kontakt krävs avgörs först när kräver avancerad anpassning/service är ifyllt",
    ),
    Open(
        id="skane-cost-unknown",
        pack=SKANE,
        case="Kostnad okänd för rollator – hemregionen betalar, men om kontakt krävs är öppet",
        kind=DEVICE,
        owner="region:12",
        missing=("product.cost_sek",),
        start=(
            ("decided", "done"),
            ("completed", "next"),
            ("contacted", "waiting"),
            ("delivered", "waiting"),
        ),
        offered=("completed", "closed", "withdrawn"),
        line_waits="om kontakt krävs avgörs först när kostnad (kr) är ifyllt",
    ),
    Open(
        id="vgr-referral-unknown-invoicer-open",
        pack=VGR,
        case="Okänt om patienten har remiss – Halland betalar ändå, men fakturavägen är öppen",
        kind=DRUG,
        owner="region:14",
        missing=("care.referral",),
        start=(("decided", "done"), ("completed", "next"), ("dispensed", "waiting")),
        offered=("completed", "closed", "withdrawn"),
        line_waits="vem som fakturerar avgörs först när remiss är ifyllt",
    ),
    Open(
        id="vgr-referral-unknown-nt-do-not-use-contact-known",
        pack=VGR,
        case="Okänt om patienten har remiss – Halland betalar ändå, men fakturavägen är öppen",
        over={"product": {"nt_council": "do_not_use"}},
        kind=DRUG,
        owner="region:14",
        missing=("care.referral",),
        start=(("decided", "done"), ("completed", "next"), ("contacted", "next"), ("dispensed", "waiting")),
        offered=("completed", "contacted", "closed", "withdrawn"),
        line_waits="vem som fakturerar avgörs först när remiss är ifyllt",
    ),
    Open(
        id="vgr-care-region-unknown-incomplete",
        pack=VGR,
        case="Okänd vårdregion",
        kind=DRUG,
        owner="region:14",
        missing=("care.region",),
        start=(
            ("decided", "done"),
            ("completed", "next"),
            ("contacted", "waiting"),
            ("commitment_registered", "waiting"),
            ("dispensed", "waiting"),
        ),
        offered=("completed", "closed", "withdrawn"),
        line_waits="ärendet saknar ett beslut",
    ),
    Open(
        id="varmland-annex-unknown-payer-open",
        pack=VARMLAND,
        case="Särskilt boende, produktbilagan okänd – det är den som avgör",
        kind=MEDTECH,
        owner="kommun:1780",
        missing=("product.annex",),
        start=(("decided", "done"), ("completed", "next"), ("delivered", "waiting")),
        offered=("completed", "closed", "withdrawn"),
        line_waits="ärendet saknar ett beslut",
    ),
]
OPEN_PARAMS = [pytest.param(o, id=o.id) for o in OPEN]


@pytest.mark.parametrize("case", OPEN_PARAMS)
def test_missing_facts_plan_offers_and_state(case: Open) -> None:
    view = case.view()
    assert tuple(view.decision.missing) == case.missing
    assert state(view) == "needs_facts"
    assert marks(view) == list(case.start)
    completed = plan(view)[1]
    assert completed.label == "Komplettera uppgifterna och pröva på nytt"
    assert completed.why == f"saknas: {', '.join(LABELS[m] for m in case.missing)}"
    assert offers(view, organisation=case.owner, role="prescriber") == list(case.offered)
    error = refusal(view, line_step(case.kind), organisation=case.owner)
    assert isinstance(error, StepRefused)
    assert case.line_waits in str(error)
    # Completing is repeatable: a second round of facts may still leave some open.
    assert allowed(case.view(("completed",)), "completed", organisation=case.owner, role="prescriber")
    assert state(case.view(("completed",))) == "needs_facts"


@pytest.mark.parametrize(
    "case", [pytest.param(o, id=o.id) for o in OPEN if o.view().decision.prior_contact_required is None]
)
def test_contact_waits_while_its_need_is_unknown(case: Open) -> None:
    view = case.view()
    error = refusal(view, "contacted", organisation=case.owner)
    assert isinstance(error, StepRefused)
    assert "om kontakt krävs" in str(error)
    assert LABELS[case.missing[0]] in str(error)  # named as staff call it
    contact = next(p for p in plan(view) if p.step == "contacted")
    assert contact.why == "avgörs när uppgifterna finns"


def test_known_required_contact_may_be_taken_while_billing_waits() -> None:
    """VGR bilaga 2 or 3 (referral unknown), NT-rådet advised against: the contact with Region
    Halland is due whichever; dispensing still waits for who invoices."""
    case = next(o for o in OPEN if o.id == "vgr-referral-unknown-nt-do-not-use-contact-known")
    d = case.view().decision
    assert (d.payer, d.invoicer, d.prior_contact_required) == ("region:13", None, True)
    assert "invoicer" in d.undetermined
    check(case.view(), "contacted", organisation=case.owner, role="prescriber")
    after = case.view(("contacted",))
    assert state(after) == "needs_facts"
    assert marks(after)[2] == ("contacted", "done")
    assert offers(after, organisation=case.owner, role="prescriber") == ["completed", "closed", "withdrawn"]
    error = refusal(after, "dispensed", organisation=case.owner)
    assert isinstance(error, StepRefused)
    assert "vem som fakturerar" in str(error)


def test_completed_is_refused_when_nothing_is_missing() -> None:
    route = ROUTES[0]
    error = refusal(route.view(), "completed", organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert "inget att komplettera" in str(error)


# --- No agreement --------------------------------------------------------------------------------

NO_AGREEMENT = [
    pytest.param(
        VGR,
        "Hallandspatient i Region Halland är ingen utomlänspatient",
        DRUG,
        "region:13",
        id="vgr-own-region",
    ),
    pytest.param(VGR, "Skånepatient i VGR – inget inläst avtal", DRUG, "region:14", id="vgr-no-pack"),
    pytest.param(
        VGR, "Dagen efter samverkansavtalets period (2027-01-01)", DRUG, "region:14", id="vgr-expired"
    ),
    pytest.param(SKANE, "Skåning i Skåne – anvisningarna gäller inte", DEVICE, "region:12", id="skane-own"),
    pytest.param(
        VARMLAND,
        "Dagen efter förlängningen (2024-02-02) – avtalet har upphört",
        MEDTECH,
        "region:17",
        id="varmland-expired",
    ),
]


@pytest.mark.parametrize(("pack", "name", "kind", "owner"), NO_AGREEMENT)
def test_no_agreement_offers_only_completing_or_ending(pack: str, name: str, kind: str, owner: str) -> None:
    view = CaseView(kind=kind, decision=decide(pack, name), owner=owner, done=())
    assert view.decision.status == "no_agreement"
    assert state(view) == "no_agreement"
    assert marks(view) == [("decided", "done")]
    assert offers(view, organisation=owner, role="prescriber") == ["completed", "closed", "withdrawn"]
    error = refusal(view, "contacted", organisation=owner)
    assert isinstance(error, StepRefused)
    assert "inget avtal" in str(error)
    assert isinstance(refusal(view, line_step(kind), organisation=owner), StepRefused)
    assert state(CaseView(kind=kind, decision=view.decision, owner=owner, done=("withdrawn",))) == "withdrawn"


# --- Ending, and steps taken once or many times --------------------------------------------------


@pytest.mark.parametrize("end", ["closed", "withdrawn"])
@pytest.mark.parametrize(
    "route",
    [
        pytest.param(r, id=r.id)
        for r in ROUTES
        if r.id in ("vgr-bilaga-2-nt-do-not-use-contact-halland", "skane-hearing-aid-contact-then-commitment")
    ],
)
def test_nothing_is_allowed_after_the_case_ended(route: Route, end: str) -> None:
    view = route.view(("contacted", end))
    assert state(view) == end
    assert offers(view, organisation=route.owner, role="prescriber") == []
    for step in ALL_STEPS:
        error = refusal(view, step, organisation=route.owner)
        assert isinstance(error, StepRefused), step
        assert f"ärendet är {STEP_NAMES[end].lower()}" in str(error)


def test_withdrawn_is_refused_once_there_are_invoice_lines() -> None:
    route = next(r for r in ROUTES if r.id == "vgr-bilaga-2-halland-patient-in-vgr")
    view = route.view(("dispensed",), has_events=True)
    error = refusal(view, "withdrawn", organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert "fakturaunderlag" in str(error)
    assert allowed(view, "closed", organisation=route.owner, role="prescriber")
    assert allowed(
        route.view(("dispensed",), has_events=False), "withdrawn", organisation=route.owner, role="prescriber"
    )


@pytest.mark.parametrize(
    ("route_id", "line"),
    [
        pytest.param("vgr-bilaga-1-vgr-patient-in-halland", "dispensed", id="dispensed"),
        pytest.param("skane-under-limit-rollator", "delivered", id="delivered"),
    ],
)
def test_line_steps_repeat(route_id: str, line: str) -> None:
    route = next(r for r in ROUTES if r.id == route_id)
    done = (line,) * 5
    view = route.view(done)
    assert allowed(view, line, organisation=route.owner, role="prescriber")
    assert state(view) == line
    assert marks(view)[-1] == (line, "done")


@pytest.mark.parametrize(
    ("route_id", "done", "step"),
    [
        pytest.param(
            "skane-over-limit-contact-home-region", ("contacted",), "contacted", id="contacted-twice"
        ),
        pytest.param(
            "skane-hearing-aid-contact-then-commitment",
            ("contacted", "commitment_registered"),
            "commitment_registered",
            id="commitment-twice",
        ),
        pytest.param(
            "varmland-home-care-region-annex-kommun-invoices",
            ("contacted",),
            "contacted",
            id="optional-contact-twice",
        ),
    ],
)
def test_once_steps_are_refused_the_second_time(route_id: str, done: tuple[str, ...], step: str) -> None:
    route = next(r for r in ROUTES if r.id == route_id)
    view = route.view(done)
    error = refusal(view, step, organisation=route.owner)
    assert isinstance(error, StepRefused)
    assert "är redan registrerat" in str(error)
    assert step not in offers(view, organisation=route.owner, role="prescriber")


def test_state_ignores_decision_bookkeeping_steps() -> None:
    route = next(r for r in ROUTES if r.id == "vgr-bilaga-2-nt-do-not-use-contact-halland")
    assert state(route.view(("completed", "event_corrected"))) == "decided"
    assert state(route.view(("contacted", "dispensed", "event_corrected"))) == "dispensed"
    assert state(route.view(("contacted", "dispensed", "closed", "event_corrected"))) == "closed"


# --- Invoice lines -------------------------------------------------------------------------------

DAY = dt.date(2025, 3, 10)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(EventLine(DAY, amount_sek=Decimal("450.00")), Decimal("450.00"), id="amount-only"),
        pytest.param(
            EventLine(DAY, quantity=Decimal(3), unit_price_sek=Decimal("149.95")),
            Decimal("449.85"),
            id="qty-x-price",
        ),
        pytest.param(
            EventLine(DAY, quantity=Decimal("0.5"), unit_price_sek=Decimal("0.01")),
            Decimal("0.01"),
            id="rounds-half-up-to-ore",
        ),
        pytest.param(
            EventLine(DAY, quantity=Decimal("3"), unit_price_sek=Decimal("33.333")),
            Decimal("100.00"),
            id="rounds-to-ore",
        ),
        pytest.param(
            EventLine(
                DAY, amount_sek=Decimal("449.85"), quantity=Decimal(3), unit_price_sek=Decimal("149.95")
            ),
            Decimal("449.85"),
            id="all-three-agree",
        ),
        pytest.param(
            EventLine(DAY, amount_sek=Decimal("99"), quantity=Decimal(3)),
            Decimal("99"),
            id="amount-and-quantity",
        ),
    ],
)
def test_line_amount(line: EventLine, expected: Decimal) -> None:
    amount = line_amount(line)
    assert amount == expected
    assert amount.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        pytest.param(
            EventLine(
                DAY, amount_sek=Decimal("450.00"), quantity=Decimal(3), unit_price_sek=Decimal("149.95")
            ),
            "stämmer inte",
            id="mismatch",
        ),
        pytest.param(EventLine(DAY), "ange belopp", id="nothing"),
        pytest.param(EventLine(DAY, quantity=Decimal(3)), "ange belopp", id="quantity-without-price"),
        pytest.param(EventLine(DAY, unit_price_sek=Decimal(3)), "ange belopp", id="price-without-quantity"),
    ],
)
def test_line_amount_refused_naming_amount(line: EventLine, words: str) -> None:
    with pytest.raises(BadLine) as info:
        line_amount(line)
    assert str(info.value).startswith("amount_sek: ")
    assert words in str(info.value)


CASE_DAY = dt.date(2025, 3, 1)
TODAY = dt.date(2025, 3, 20)


@pytest.mark.parametrize(
    ("occurred_on", "ended_on", "words"),
    [
        pytest.param(dt.date(2025, 3, 21), None, "i framtiden", id="future"),
        pytest.param(dt.date(2025, 2, 28), None, "före ärendets datum 2025-03-01", id="before-case"),
        pytest.param(
            dt.date(2025, 3, 16), dt.date(2025, 3, 15), "efter att ärendet avslutades", id="after-end"
        ),
    ],
)
def test_line_date_refused(occurred_on: dt.date, ended_on: dt.date | None, words: str) -> None:
    with pytest.raises(BadLine) as info:
        check_line_date(occurred_on, case_date=CASE_DAY, today=TODAY, ended_on=ended_on)
    assert str(info.value).startswith(f"occurred_on: {occurred_on} ")
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("occurred_on", "ended_on"),
    [
        pytest.param(CASE_DAY, None, id="case-day"),
        pytest.param(TODAY, None, id="today"),
        pytest.param(dt.date(2025, 3, 15), dt.date(2025, 3, 15), id="end-day"),
    ],
)
def test_line_date_accepted(occurred_on: dt.date, ended_on: dt.date | None) -> None:
    assert check_line_date(occurred_on, case_date=CASE_DAY, today=TODAY, ended_on=ended_on) is None


@pytest.mark.parametrize(
    ("total", "ceiling", "refused"),
    [
        pytest.param("10000.01", "10000.00", True, id="over"),
        pytest.param("10000.00", "10000", False, id="equal"),
        pytest.param("9999.99", "10000", False, id="under"),
        pytest.param("1000000", None, False, id="no-ceiling"),
    ],
)
def test_check_ceiling(total: str, ceiling: str | None, refused: bool) -> None:
    limit = None if ceiling is None else Decimal(ceiling)
    if refused:
        with pytest.raises(StepRefused) as info:
            check_ceiling(Decimal(total), limit)
        assert f"{total} kr" in str(info.value)
        assert "tak" in str(info.value)
    else:
        assert check_ceiling(Decimal(total), limit) is None
