"""Make and deliver the Sesam LMN registration request for a case, and record that it went.

One function for the page and the API. The personal data typed for the request live only in
this call: they go into the e-mail or the PDF and are then dropped. The case records the step
"registration_sent" with how and to whom — never what was in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from vembetalar import mail
from vembetalar.handoffs.sesam import (
    BadRequest,
    RegistrationForm,
    request_pdf,
    request_text,
    request_values,
    subject,
)
from vembetalar.model.decision import Clearance
from vembetalar.store import repo
from vembetalar.workflow import StepRefused, check

Delivery = Literal["email", "pdf"]


@dataclass(frozen=True)
class Outcome:
    """``sent``: e-mailed; ``pdf``: the page for fax or post; ``preview``: no mail server is
    configured (the demo), so the message is shown and nothing is sent or recorded."""

    kind: Literal["sent", "pdf", "preview"]
    text: str = ""
    to: str = ""
    pdf: bytes = b""


def _clearance_for(db: Session, actor: repo.Actor, case_id: str) -> tuple[Clearance, str | None]:
    record = repo.get_case(db, actor, case_id, log=False)
    view = repo.case_view(db, record)
    check(view, "registration_sent", organisation=actor.organisation_id, role=actor.role)
    clearance = view.decision.clearance
    assert clearance is not None and clearance.request is not None  # check() refuses otherwise
    return clearance, record.patient_id


def make_request(
    db: Session,
    actor: repo.Actor,
    case_id: str,
    form: RegistrationForm,
    delivery: Delivery,
    *,
    today: dt.date,
    settings: mail.MailSettings | None,
) -> Outcome:
    """Check the step may be taken, build the request, deliver it and record the step.

    Raises StepRefused/Forbidden/NotFound as the workflow says, BadRequest for a bad field and
    MailError when the configured server cannot or may not take it."""
    clearance, case_personnummer = _clearance_for(db, actor, case_id)
    values = request_values(form)
    if case_personnummer and values["personnummer"] != case_personnummer:
        raise BadRequest("personnummer: stämmer inte med ärendets personnummer")
    request = clearance.request
    assert request is not None
    if delivery == "pdf":
        pdf = request_pdf(clearance, values)
        note = f"utskriven för fax ({request.fax}) eller post" if request.fax else "utskriven för post"
        repo.add_step(db, actor, case_id, "registration_sent", note, today=today)
        return Outcome("pdf", pdf=pdf)
    if not request.email:
        raise StepRefused(f"avtalet anger ingen e-postadress för {clearance.system}; skriv ut och skicka")
    text = request_text(clearance, values)
    if settings is None:
        return Outcome("preview", text=text, to=request.email)
    if request.encrypted_email and (why := settings.why_not_encrypted()):
        raise StepRefused(why)
    mail.send(settings, mail.message(settings.sender, request.email, subject(clearance), text))
    repo.add_step(db, actor, case_id, "registration_sent", f"e-post till {request.email}", today=today)
    return Outcome("sent", to=request.email)
