"""The case's steps: which it needs, in what order, who may take each, what must precede billing.

One pure module, driven by the Decision alone (no web, no database): the store asks it before it
writes, the API and the pages ask it what to offer. Keeping the rules here means the desk cannot
offer a step that the store would refuse, or the other way round.

The agreements give the steps to the party that treats or prescribes — the organisation that
took the case. It registers the contact with the paying region, the payment commitment the home
region issued ("Hemregionen ska utfärda en betalningsförbindelse. Den förskrivande enheten ska
spara den." — seed 001), and every dispensing or delivery. The payer reads; it does not drive
the invoicer's work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from vembetalar.model import codes
from vembetalar.model.case import LABELS
from vembetalar.model.decision import Decision
from vembetalar.security import can


class Forbidden(PermissionError):
    """This user may not take the step: wrong role, or not the party the agreement gives it to."""


class StepRefused(ValueError):
    """The step cannot be taken now; the message says what must come first."""


#: Steps a user takes. ``dispensed`` and ``delivered`` repeat (a drug is dispensed many times; an
#: order has several lines); the rest are taken at most once. ``closed`` and ``withdrawn`` end a
#: case, so they share one slot (``ENDED``) that the database keeps unique.
USER_STEPS = (
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
REPEATABLE = frozenset({"dispensed", "delivered", "completed", "event_corrected"})
ENDED = "ended"
LINE_STEPS = frozenset({"dispensed", "delivered"})

#: Every step with the words staff use for it (``contacted`` is named after whom was contacted
#: where the decision says; see ``label``).
STEP_NAMES: dict[str, str] = {
    "decided": "Beslut fattat",
    "completed": "Kompletterat och omprövat",
    "contacted": "Kontakt tagen",
    "commitment_registered": "Betalningsförbindelse registrerad",
    "unit_named": "Enheten som beslutat om egenvården angiven",
    "payer_rechecked": "Betalande region kontrollerad på nytt",
    "registration_sent": "Registreringsbegäran skickad",
    "activation_requested": "Aktivering begärd hos Hjälpmedel Kundtjänst",
    "cleared": "Klartecken – patienten registrerad",
    "dispensed": "Expedierat (läkemedel)",
    "delivered": "Levererat/utlämnat",
    "event_corrected": "Fakturaunderlag rättat",
    "closed": "Avslutat",
    "withdrawn": "Återkallat",
    #: Cases stored before the workflow module (2026-11) recorded this after a delivery.
    "billable": "Fakturaunderlag skapat",
}

#: What a case's state is called in lists, beyond the step names.
STATE_NAMES: dict[str, str] = {
    **STEP_NAMES,
    "needs_facts": "Uppgifter saknas",
    "no_agreement": "Inget avtal",
}

#: Who may take a step, by role; the party check comes on top.
_STEP_ROLES = {
    "contacted": "case.step",
    "commitment_registered": "commitment.create",
    "unit_named": "case.step",
    "payer_rechecked": "case.step",
    "registration_sent": "case.step",
    "activation_requested": "case.step",
    "cleared": "case.step",
    "dispensed": "case.step",
    "delivered": "case.step",
    "closed": "case.create",
    "withdrawn": "case.create",
    "completed": "case.create",
    "event_corrected": "case.step",
}

Mark = Literal["done", "next", "waiting", "optional", "not_needed"]


@dataclass(frozen=True)
class CaseView:
    """What the workflow needs to know about a stored case."""

    kind: str
    decision: Decision
    #: The organisation that took the case: the treating or prescribing unit.
    owner: str
    #: Steps taken, oldest first.
    done: tuple[str, ...]
    has_events: bool = False
    #: Under self-care (payer ``unit``): the organisation of the unit that decided it, once named.
    payer_unit: str | None = None
    #: The patient had an earlier case here that got the same go-ahead (seed 001: "om patienten
    #: återkommer vid annat tillfälle och behöver ett nytt hjälpmedel").
    returning: bool = False


@dataclass(frozen=True)
class PlannedStep:
    step: str
    label: str
    mark: Mark
    why: str | None = None


def line_step(kind: str) -> str:
    """Drugs are dispensed (expedierade); everything else is delivered or handed out."""
    return "dispensed" if kind == "drug_exception" else "delivered"


def label(step: str, decision: Decision | None = None) -> str:
    """The step's name; a contact is named after whom it is with (the home region, or a named
    function such as VO Hjälpmedel for a patient abroad), a go-ahead after the agreement's."""
    if step == "contacted" and decision is not None and decision.contact is not None:
        if decision.contact.order_copy:
            return f"Kopia på beställningen skickad till {decision.contact.name}"
        return f"Kontakt tagen med {decision.contact.name}"
    clearance = decision.clearance if decision is not None else None
    if step == "cleared" and clearance is not None:
        return clearance.title
    if step == "registration_sent" and clearance is not None:
        return f"Registreringsbegäran till {clearance.system} skickad"
    if step == "contacted":
        return "Hemregionen kontaktad"
    return STEP_NAMES.get(step, step)


def history_label(step: str, note: str | None, decision: Decision | None = None) -> str:
    """A step as the case's history shows it. The first trial of a case is "Beslut fattat" only
    when it decided; one that waits for facts, or found no agreement, says so."""
    if step == "decided" and note in ("needs_facts", "incomplete"):
        return "Prövat – uppgifter saknas"
    if step == "decided" and note == "no_agreement":
        return "Prövat – inget avtal gäller"
    return label(step, decision)


def ended(view: CaseView) -> str | None:
    return next((s for s in reversed(view.done) if s in ("closed", "withdrawn")), None)


def needs_facts(decision: Decision) -> bool:
    """A decision that names missing facts is not "Beslut fattat", whatever its status."""
    return bool(decision.missing)


def state(view: CaseView) -> str:
    """The one word a case list shows: where the case stands."""
    if end := ended(view):
        return end
    if view.decision.status == "no_agreement":
        return "no_agreement"
    if needs_facts(view.decision):
        return "needs_facts"
    taken = [s for s in view.done if s not in ("decided", "completed", "event_corrected")]
    return taken[-1] if taken else "decided"


def bills(decision: Decision) -> bool:
    """Whether the decision lets a dispensing or delivery create a billable event: only when
    someone invoices someone else. Where the payer carries its own cost (no invoicer), nothing
    is billed. Under self-care the case must also say whose the unit is (``bills_case``)."""
    return decision.payer is not None and decision.invoicer is not None


def needs_unit(decision: Decision) -> bool:
    """Self-care: the cost "tillhör den enhet/mottagning som bedömt och beslutat om egenvård"
    (seed 004). The decision cannot know that unit; the case names it before anything is billed."""
    return decision.payer == "unit" and decision.invoicer is not None


def bills_case(view: CaseView) -> bool:
    """Whether a dispensing or delivery on this case creates a billable event. A self-care unit
    of the invoicing organisation itself keeps the cost in-house: nothing to invoice."""
    if not bills(view.decision):
        return False
    if needs_unit(view.decision):
        return view.payer_unit is not None and view.payer_unit != view.decision.invoicer
    return True


def _party_check(view: CaseView, organisation: str, step: str) -> None:
    if organisation != view.owner:
        raise Forbidden(
            f"steget «{label(step, view.decision)}» tas av den behandlande/förskrivande enheten "
            f"({codes.party_name(view.owner)}), inte av {codes.party_name(organisation)}"
        )


def _role_check(role: str, step: str) -> None:
    permission = _STEP_ROLES[step]
    if not can(role, permission):
        raise Forbidden(f"rollen {role} får inte göra detta ({permission})")


def facts_named(names: Sequence[str]) -> str:
    """Missing facts as staff call them ("NT-rådets yttrande"), not the Case's dotted names."""
    return ", ".join(LABELS.get(n, n) for n in names)


def _waits_for(view: CaseView, output: str) -> StepRefused:
    missing = facts_named(view.decision.missing) or "uppgifter"
    return StepRefused(
        f"beslutet är inte färdigt: {output} avgörs först när {missing} är ifyllt; komplettera ärendet"
    )


def _before_lines(view: CaseView) -> None:
    """What the agreement demands before treatment or hand-out, and before anything is billed."""
    d = view.decision
    if d.status != "decided":
        raise StepRefused(
            "ärendet saknar ett beslut (inget avtal eller uppgifter saknas); komplettera det först"
        )
    if "payer" in d.undetermined or "shares" in d.undetermined:
        raise _waits_for(view, "betalaren")
    if "invoicer" in d.undetermined:
        raise _waits_for(view, "vem som fakturerar")
    if d.prior_contact_required is None:
        raise _waits_for(view, "om kontakt krävs")
    if d.payment_commitment_required is None:
        raise _waits_for(view, "om betalningsförbindelse krävs")
    if d.prior_contact_required and "contacted" not in view.done:
        raise StepRefused(
            f"«{label('contacted', d)}» ska registreras innan behandling eller utlämning "
            "(avtalet kräver kontakt först)"
        )
    if d.payment_commitment_required and "commitment_registered" not in view.done:
        raise StepRefused("en betalningsförbindelse från betalaren ska registreras först")
    if d.clearance is not None and "cleared" not in view.done:
        raise StepRefused(f"«{d.clearance.reason}» Registrera klartecknet först ({d.clearance.title}).")
    if needs_unit(d) and "unit_named" not in view.done:
        raise StepRefused(
            "ange först vilken enhet/mottagning som beslutade om egenvården: kostnaden är dess "
            "och fakturan ställs till dess organisation"
        )


def _check_clearance_step(view: CaseView, step: str) -> None:
    """The go-ahead's own steps: a returning patient's payer is checked again first; then a new
    registration is sent, or an inactivated patient's activation asked for (one or the other);
    the go-ahead itself is recorded when it comes."""
    clearance = view.decision.clearance
    if clearance is None:
        raise StepRefused("beslutet kräver inget klartecken före utlämning")
    if step == "payer_rechecked":
        if not view.returning:
            raise StepRefused("patienten har inget tidigare ärende här; betalaren är redan prövad")
        return
    if view.returning and "payer_rechecked" not in view.done:
        raise StepRefused(f"{clearance.returning or 'kontrollera på nytt vilken region som ska betala'}")
    if "cleared" in view.done and step != "cleared":
        raise StepRefused(f"klartecknet är redan registrerat ({clearance.title})")
    if step == "registration_sent":
        if clearance.request is None:
            raise StepRefused(f"avtalet anger ingen registreringsbegäran för {clearance.system}")
        if "activation_requested" in view.done:
            raise StepRefused("aktivering är redan begärd; en ny registrering behövs inte")
    if step == "activation_requested":
        if clearance.inactive is None:
            raise StepRefused(f"avtalet anger ingen aktivering för {clearance.system}")
        if "registration_sent" in view.done:
            raise StepRefused("en registreringsbegäran är redan skickad")


def authorise(view: CaseView, step: str, *, organisation: str, role: str) -> None:
    """Raise ``Forbidden`` unless this role, in this organisation, may take the step at all."""
    if step not in _STEP_ROLES:
        raise StepRefused(f"okänt steg {step!r} (tillåtna: {', '.join(USER_STEPS)})")
    _role_check(role, step)
    _party_check(view, organisation, step)


def check(view: CaseView, step: str, *, organisation: str, role: str) -> None:
    """Raise ``Forbidden`` (wrong role or party) or ``StepRefused`` (not now) unless the step may
    be taken. The order of the checks is the order of the answers: who first, then when."""
    authorise(view, step, organisation=organisation, role=role)
    if end := ended(view):
        raise StepRefused(f"ärendet är {STEP_NAMES[end].lower()}; inga fler steg kan tas")
    d = view.decision
    if step in ("closed", "withdrawn", "completed"):
        if step == "withdrawn" and view.has_events:
            raise StepRefused(
                "ärendet har fakturaunderlag; makulera dem först eller avsluta ärendet i stället"
            )
        if step == "completed" and not needs_facts(d) and d.status != "no_agreement":
            raise StepRefused("beslutet saknar inga uppgifter; det finns inget att komplettera")
        return
    if step not in REPEATABLE and step in view.done:
        raise StepRefused(f"steget «{label(step, d)}» är redan registrerat")
    if step == "contacted":
        if d.status == "no_agreement":
            raise StepRefused("inget avtal gäller; det finns ingen att kontakta enligt avtalet")
        if d.prior_contact_required is None and d.contact is None:
            raise _waits_for(view, "om kontakt krävs")
        if not d.prior_contact_required and d.contact is None:
            raise StepRefused("beslutet kräver ingen kontakt före behandling eller utlämning")
        return
    if step == "commitment_registered":
        if d.payment_commitment_required is None:
            raise _waits_for(view, "om betalningsförbindelse krävs")
        if not d.payment_commitment_required:
            raise StepRefused("beslutet kräver ingen betalningsförbindelse")
        if d.prior_contact_required and "contacted" not in view.done:
            raise StepRefused(f"registrera «{label('contacted', d)}» först")
        return
    if step in ("payer_rechecked", "registration_sent", "activation_requested", "cleared"):
        _check_clearance_step(view, step)
        return
    if step == "unit_named":
        if not needs_unit(d):
            raise StepRefused("beslutet lägger inte kostnaden på den enhet som beslutat om egenvård")
        return
    if step in LINE_STEPS:
        expected = line_step(view.kind)
        if step != expected:
            raise StepRefused(f"för den här ärendetypen registreras «{STEP_NAMES[expected]}»")
        _before_lines(view)
        return
    if step == "event_corrected":
        return


def plan(view: CaseView) -> list[PlannedStep]:
    """The whole sequence for display: what is done, what comes next, what waits and why."""
    d = view.decision
    mark: Mark
    why: str | None
    steps: list[PlannedStep] = [PlannedStep("decided", label("decided"), "done")]
    if needs_facts(d):
        steps.append(
            PlannedStep(
                "completed",
                "Komplettera uppgifterna och pröva på nytt",
                "next",
                f"saknas: {facts_named(d.missing)}",
            )
        )
    if d.status == "no_agreement":
        return steps
    if d.prior_contact_required is None:
        steps.append(
            PlannedStep("contacted", label("contacted", d), "waiting", "avgörs när uppgifterna finns")
        )
    elif d.prior_contact_required:
        steps.append(PlannedStep("contacted", label("contacted", d), _mark(view, "contacted")))
    elif d.contact is not None:
        steps.append(PlannedStep("contacted", label("contacted", d), _mark(view, "contacted", optional=True)))
    if d.payment_commitment_required is None:
        steps.append(
            PlannedStep(
                "commitment_registered",
                label("commitment_registered"),
                "waiting",
                "avgörs när uppgifterna finns",
            )
        )
    elif d.payment_commitment_required:
        mark = _mark(view, "commitment_registered")
        why = None
        if mark == "next" and d.prior_contact_required and "contacted" not in view.done:
            mark, why = "waiting", f"tas efter «{label('contacted', d)}»"
        steps.append(PlannedStep("commitment_registered", label("commitment_registered"), mark, why))
    if d.clearance is not None:
        steps += _clearance_plan(view)
    if needs_unit(d):
        steps.append(
            PlannedStep(
                "unit_named",
                label("unit_named"),
                _mark(view, "unit_named"),
                None if "unit_named" in view.done else "fakturan ställs till den enhetens organisation",
            )
        )
    line = line_step(view.kind)
    try:
        _before_lines(view)
        mark = "done" if line in view.done else "next"
        why = None if bills_case(view) else _no_billing(view)
    except StepRefused as exc:
        mark, why = "waiting", str(exc)
    steps.append(PlannedStep(line, label(line), mark, why))
    return steps


def _clearance_plan(view: CaseView) -> list[PlannedStep]:
    clearance = view.decision.clearance
    assert clearance is not None
    d, steps = view.decision, []
    recheck_first = view.returning and "payer_rechecked" not in view.done
    if view.returning:
        steps.append(
            PlannedStep(
                "payer_rechecked",
                label("payer_rechecked"),
                _mark(view, "payer_rechecked"),
                clearance.returning,
            )
        )
    waits = "tas efter «Betalande region kontrollerad på nytt»" if recheck_first else None
    sent, asked = "registration_sent" in view.done, "activation_requested" in view.done
    if clearance.request is not None and not asked:
        mark: Mark = "done" if sent else ("waiting" if recheck_first else "next")
        why = waits or (None if sent else f"till {clearance.by.name}; bara de uppgifter avtalet räknar upp")
        steps.append(PlannedStep("registration_sent", label("registration_sent", d), mark, why))
    if clearance.inactive is not None and not sent:
        mark = "done" if asked else ("waiting" if recheck_first else "optional")
        steps.append(
            PlannedStep(
                "activation_requested", label("activation_requested"), mark, waits or clearance.inactive
            )
        )
    mark = "done" if "cleared" in view.done else ("waiting" if recheck_first else "next")
    steps.append(PlannedStep("cleared", label("cleared", d), mark, waits or f"från {clearance.by.name}"))
    return steps


def _no_billing(view: CaseView) -> str:
    """Why a dispensing or delivery creates no billable event, as the case page says it."""
    d = view.decision
    if d.payer == "unit" and view.payer_unit is not None and view.payer_unit == d.invoicer:
        return (
            "inget fakturaunderlag skapas: enheten som beslutade om egenvården hör till "
            f"{codes.party_name(view.payer_unit)} själv, som alltså bär kostnaden"
        )
    if d.payer == "unit":
        return (
            "inget fakturaunderlag skapas: kostnaden bärs av den enhet som beslutade om egenvården "
            "och avtalet anger ingen som fakturerar den"
        )
    if d.payer is None:
        return "inget fakturaunderlag skapas: avtalet anger ingen betalare (se beslutet)"
    return "inget fakturaunderlag skapas: betalaren står själv för kostnaden"


def _mark(view: CaseView, step: str, *, optional: bool = False) -> Mark:
    if step in view.done:
        return "done"
    return "optional" if optional else "next"


def allowed(view: CaseView, step: str, *, organisation: str, role: str) -> bool:
    try:
        check(view, step, organisation=organisation, role=role)
    except (Forbidden, StepRefused):
        return False
    return True


def offers(view: CaseView, *, organisation: str, role: str) -> list[str]:
    """The steps this user may take now, in the agreement's order (what the page shows as buttons)."""
    candidates: Sequence[str] = (
        "completed",
        "contacted",
        "commitment_registered",
        "payer_rechecked",
        "registration_sent",
        "activation_requested",
        "cleared",
        "unit_named",
        line_step(view.kind),
        "closed",
        "withdrawn",
    )
    allowed = []
    for step in candidates:
        try:
            check(view, step, organisation=organisation, role=role)
        except (Forbidden, StepRefused):
            continue
        allowed.append(step)
    return allowed


class BadLine(ValueError):
    """An invoice line that cannot be right (a field's value); the message names the field."""


@dataclass(frozen=True)
class SelfCareUnit:
    """The unit/mottagning that assessed and decided self-care, and the organisation it belongs
    to (``region:17``, ``kommun:1780``): the invoice goes to that organisation and names the unit."""

    organisation: str
    name: str


def check_unit(unit: SelfCareUnit | None) -> SelfCareUnit:
    """A named unit that can be invoiced: a known region or municipality and a name."""
    if unit is None:
        raise BadLine("unit: ange enheten som beslutade om egenvården (organisation och namn)")
    kind, _, code = unit.organisation.partition(":")
    known = (kind == "region" and code in codes.regions()) or (
        kind == "kommun" and code in codes.municipalities()
    )
    if not known:
        raise BadLine("unit.organisation: ange en region (region:17) eller kommun (kommun:1780) med SCB-kod")
    name = " ".join(unit.name.split())
    if not name or len(name) > 200:
        raise BadLine("unit.name: ange enhetens namn (högst 200 tecken)")
    return SelfCareUnit(unit.organisation, name)


@dataclass(frozen=True)
class EventLine:
    """What one dispensing or delivered order line must say for the invoice the agreement
    describes: date, product name, varunummer, quantity, à-pris and amount, prescriber and unit
    (seed 000 bilaga 2–3, seed 004), and the diarienummer where bilaga 1 asks for it. Fields may
    be missing — billing lists what an invoice still lacks — but never wrong."""

    occurred_on: dt.date
    amount_sek: Decimal | None = None
    quantity: Decimal | None = None
    unit_price_sek: Decimal | None = None
    product_name: str | None = None
    varunummer: str | None = None
    prescriber_name: str | None = None
    unit_name: str | None = None
    diarienummer: str | None = None


ÖRE = Decimal("0.01")


def line_amount(line: EventLine) -> Decimal:
    """The line's own amount: given, or quantity × à-pris; when all three are given they agree."""
    computed = None
    if line.quantity is not None and line.unit_price_sek is not None:
        computed = (line.quantity * line.unit_price_sek).quantize(ÖRE, ROUND_HALF_UP)
    if line.amount_sek is None:
        if computed is None:
            raise BadLine("amount_sek: ange belopp, eller antal och à-pris")
        return computed
    if computed is not None and computed != line.amount_sek:
        raise BadLine(
            f"amount_sek: {line.amount_sek} kr stämmer inte med antal × à-pris "
            f"({line.quantity} × {line.unit_price_sek} = {computed} kr)"
        )
    return line.amount_sek


def check_line_date(
    occurred_on: dt.date, *, case_date: dt.date, today: dt.date, ended_on: dt.date | None
) -> None:
    """A dispensing or delivery lies within the case's life: not before its date, not after it
    ended, never in the future."""
    if occurred_on > today:
        raise BadLine(f"occurred_on: {occurred_on} ligger i framtiden")
    if occurred_on < case_date:
        raise BadLine(f"occurred_on: {occurred_on} ligger före ärendets datum {case_date}")
    if ended_on is not None and occurred_on > ended_on:
        raise BadLine(f"occurred_on: {occurred_on} ligger efter att ärendet avslutades {ended_on}")


def check_ceiling(total_after: Decimal, ceiling: Decimal | None) -> None:
    """The sum of a case's current events never exceeds the registered commitment's ceiling."""
    if ceiling is not None and total_after > ceiling:
        raise StepRefused(
            f"beloppet skulle ge {total_after} kr för ärendet, över betalningsförbindelsens tak {ceiling} kr"
        )
