"""A Decision explained to a person, in Swedish, with the agreement's own words."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vembetalar.model.codes import party_name
from vembetalar.model.decision import Decision

STATUS = {
    "decided": ("Beslut", "green"),
    "no_agreement": ("Inget avtal gäller", "yellow"),
    "incomplete": ("Uppgifter saknas", "red"),
}


def _party(value: str | None) -> str:
    return f"{party_name(value)} ({value})" if value else "—"


def render(decision: Decision, title: str | None = None) -> RenderableType:
    label, colour = STATUS[decision.status]
    parts: list[RenderableType] = []
    if decision.status == "decided":
        who = Table.grid(padding=(0, 2))
        who.add_column(style="bold")
        who.add_column()
        who.add_row("Beslutar", _party(decision.decider))
        payer = _party(decision.payer) if decision.payer else "Avgörs enligt anvisningen nedan"
        who.add_row("Betalar (kostnadsansvar)", payer)
        if decision.payer_note:
            who.add_row("", Text(decision.payer_note, style="italic"))
        who.add_row("Fakturerar", _party(decision.invoicer))
        if decision.payment_commitment_required:
            who.add_row("Betalningsförbindelse", "Krävs innan förskrivning")
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
    else:
        parts.append(Text(decision.reason or "", style=colour))
        if decision.missing:
            parts.append(Text("Fyll i: " + ", ".join(decision.missing), style="bold"))

    if decision.actions:
        steps = Table.grid(padding=(0, 1))
        steps.add_column(justify="right", style="bold")
        steps.add_column()
        for i, action in enumerate(decision.actions, 1):
            steps.add_row(f"{i}.", action)
        parts += [Text("\nAtt göra", style="bold underline"), steps]

    if decision.invoice and decision.invoice.recipient:
        r = decision.invoice.recipient
        lines = [r.name, *r.address]
        for label_, value in (
            ("Referens", r.reference),
            ("Projektkod", r.project_code),
            ("Beställar-ID", r.orderer_id),
            ("GLN", r.gln),
            ("PEPPOL-id", r.peppol_id),
            ("Organisationsnummer", r.org_number),
        ):
            if value:
                lines.append(f"{label_}: {value}")
        if decision.invoice.channel:
            lines.append(f"Kanal: {decision.invoice.channel}")
        parts += [Text("\nFakturan ställs till", style="bold underline"), Text("\n".join(lines))]
        if decision.invoice.required_fields:
            parts.append(Text("Av fakturan ska framgå:", style="bold"))
            parts.append(Text("\n".join(f"• {f}" for f in decision.invoice.required_fields)))
        if decision.invoice.forbidden_fields:
            parts.append(
                Text(
                    "Ska inte stå på fakturan: " + ", ".join(decision.invoice.forbidden_fields),
                    style="bold",
                )
            )

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
        parts.append(Text.assemble(("Regel ", "bold"), f"{match.rule_id}: {match.title}"))
        if match.matched:
            parts.append(Text("  eftersom " + " och ".join(match.matched), style="dim"))
        if match.interpretation:
            parts.append(Text(f"  Tolkning: {match.interpretation}", style="italic"))
    if decision.citations:
        parts.append(Text("\nKällan säger", style="bold underline"))
        parts += [Text(f"• {c}") for c in decision.citations]
    heading = f"{label}" + (f" — {title}" if title else "")
    return Panel(Group(*parts), title=heading, title_align="left", border_style=colour)
