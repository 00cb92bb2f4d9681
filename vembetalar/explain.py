"""A Decision explained to a person, in Swedish, with the agreement's own words."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vembetalar.model.case import LABELS
from vembetalar.model.codes import party_name
from vembetalar.model.decision import Decision

STATUS = {
    "decided": ("Beslut", "green"),
    "no_agreement": ("Inget avtal gäller", "yellow"),
    "incomplete": ("Uppgifter saknas", "red"),
}
#: What a user reads for an output that waits for a fact.
OPEN = "Öppet tills uppgifterna nedan är ifyllda"
OUTPUT_NAMES = {
    "decider": "vem som beslutar",
    "payer": "vem som betalar",
    "shares": "hur kostnaden delas",
    "payer_note": "anvisning om betalningen",
    "invoicer": "vem som fakturerar",
    "prior_contact_required": "om kontakt krävs först",
    "contact": "vem som ska kontaktas",
    "payment_commitment_required": "om betalningsförbindelse krävs",
    "invoice": "fakturans mottagare och innehåll",
    "clearance": "klartecken före utlämning",
}
#: vembetalar's own policy, shown as such and never as the agreement's words.
NOT_NEEDED = "Behövs inte enligt avtalet (vembetalars dataminimering, inte avtalets ord)"


def _party(value: str | None) -> str:
    return f"{party_name(value)} ({value})" if value else "—"


def _who(decision: Decision, output: str, value: str | None, empty: str) -> str:
    if output in decision.undetermined:
        return OPEN
    return _party(value) if value else empty


def fields_text(names: list[str]) -> str:
    return ", ".join(f"{LABELS.get(n, n)} ({n})" for n in names)


def render(decision: Decision, title: str | None = None) -> RenderableType:
    label, colour = STATUS[decision.status]
    parts: list[RenderableType] = []
    if decision.status != "no_agreement":
        who = Table.grid(padding=(0, 2))
        who.add_column(style="bold")
        who.add_column()
        who.add_row("Beslutar", _who(decision, "decider", decision.decider, "Anges inte av avtalet"))
        who.add_row(
            "Betalar (kostnadsansvar)",
            _who(decision, "payer", decision.payer, "Anges inte av avtalet – se anvisningen nedan"),
        )
        for i, share in enumerate(decision.shares, 1):
            limit = f", högst {share.max_days} dagar" if share.max_days is not None else ""
            who.add_row(f"  del {i}", f"{_party(share.payer)}: {share.what}{limit}")
        if decision.payer_note:
            who.add_row("", Text(decision.payer_note, style="italic"))
        who.add_row("Fakturerar", _who(decision, "invoicer", decision.invoicer, "—"))
        if decision.payment_commitment_required:
            who.add_row("Betalningsförbindelse", "Krävs innan förskrivning")
        if decision.prior_contact_required is None:
            who.add_row("Kontakt först", OPEN)
        parts.append(who)
        if decision.prior_contact_required and decision.contact:
            c = decision.contact
            details = ", ".join(x for x in (c.phone, c.email) if x)
            parts.append(
                Text.assemble(
                    ("\nGör först: ", "bold red"),
                    f"kontakta {c.name}" + (f" ({details})" if details else ""),
                )
            )
        elif decision.contact:
            c = decision.contact
            details = ", ".join(x for x in (c.phone, c.email) if x)
            parts.append(Text(f"\nKontakt: {c.name}" + (f" ({details})" if details else "")))
        if decision.contact and decision.contact.note:
            parts.append(Text(decision.contact.note, style="italic"))
    if decision.reason:
        parts.append(Text(decision.reason, style=colour))
    if decision.missing:
        parts.append(Text("Fyll i: " + fields_text(decision.missing), style="bold"))
    if decision.undetermined and decision.status != "incomplete":
        opened = ", ".join(OUTPUT_NAMES.get(o, o) for o in decision.undetermined)
        parts.append(Text(f"Öppet tills uppgifterna är ifyllda: {opened}", style="italic"))

    if decision.actions:
        steps = Table.grid(padding=(0, 1))
        steps.add_column(justify="right", style="bold")
        steps.add_column()
        for i, action in enumerate(decision.actions, 1):
            steps.add_row(f"{i}.", action)
        parts += [Text("\nAtt göra", style="bold underline"), steps]

    invoice = decision.invoice
    if invoice and invoice.recipient:
        r = invoice.recipient
        lines = [r.name, *r.address]
        for label_, value in (
            ("Referens", r.reference),
            ("Projektkod", r.project_code),
            ("Beställar-ID", r.orderer_id),
            ("GLN", r.gln),
            ("PEPPOL-id", r.peppol_id),
            ("Organisationsnummer", r.org_number),
            ("VAN-operatör", r.van_operator),
        ):
            if value:
                lines.append(f"{label_}: {value}")
        if invoice.channel:
            lines.append(f"Kanal: {invoice.channel}")
        if r.enquiries_email:
            lines.append(f"Frågor om fakturor: {r.enquiries_email}")
        parts += [Text("\nFakturan ställs till", style="bold underline"), Text("\n".join(lines))]
    elif invoice:
        parts.append(Text("\nFakturan ställs till: anges inte av avtalet", style="bold underline"))
    if invoice:
        if invoice.note:
            parts.append(Text(invoice.note, style="italic"))
        if invoice.required_fields:
            parts.append(Text("Av fakturan ska framgå:", style="bold"))
            parts.append(Text("\n".join(f"• {f}" for f in invoice.required_fields)))
        if invoice.forbidden_fields:
            parts.append(
                Text("Avtalet förbjuder på fakturan: " + ", ".join(invoice.forbidden_fields), style="bold")
            )
        if invoice.not_needed_fields:
            parts.append(Text(f"{NOT_NEEDED}: " + ", ".join(invoice.not_needed_fields), style="dim"))

    exp = decision.explanation
    if exp.pack:
        validity = f"{exp.valid_from or '…'} – {exp.valid_to or 'tills vidare'}"
        parts += [
            Text("\nAvtal", style="bold underline"),
            Text(f"{exp.pack_title} ({exp.pack}), gäller {validity}"),
        ]
    if exp.precedence:
        parts.append(Text(exp.precedence, style="italic"))
    for match in exp.rules:
        prefix = "Regel (en av flera möjliga, samma svar) " if match.alternative else "Regel "
        parts.append(Text.assemble((prefix, "bold"), f"{match.rule_id}: {match.title}"))
        if match.matched:
            parts.append(Text("  eftersom " + " och ".join(match.matched), style="dim"))
        if match.interpretation:
            parts.append(Text(f"  Tolkning: {match.interpretation}", style="italic"))
    if decision.citations:
        parts.append(Text("\nKällan säger", style="bold underline"))
        parts += [Text(f"• {c}") for c in decision.citations]
    heading = f"{label}" + (f" — {title}" if title else "")
    return Panel(Group(*parts), title=heading, title_align="left", border_style=colour)
