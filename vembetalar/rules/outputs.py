"""From the rules that fired to a Decision. Shared by the single-case and the batch path, so a
decision reads the same wherever it was made."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vembetalar.model import codes
from vembetalar.model.case import case_fields
from vembetalar.model.decision import (
    Contact,
    Decision,
    Explanation,
    InvoiceSpec,
    Recipient,
    RuleMatch,
)
from vembetalar.rules.pack import TEMPLATE, Pack, Rule


def order_fields(names: Sequence[str]) -> list[str]:
    """Missing fields in the order of the case form, so both paths list them alike."""
    catalogue = list(case_fields())
    return sorted(set(names), key=lambda n: catalogue.index(n) if n in catalogue else len(catalogue))


def fill(text: str, values: dict[str, Any]) -> str:
    """Put case values into an output text; ``{patient.home_region:name}`` gives the region's name."""

    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if match.group(2):
            kind = "kommun" if len(str(value)) == 4 else "region"
            return codes.party_name(f"{kind}:{value}")
        return str(value)

    return TEMPLATE.sub(one, text)


def explanation(pack: Pack | None, hits: Sequence[Rule] = (), precedence: str | None = None) -> Explanation:
    if pack is None:
        return Explanation(precedence=precedence)
    meta = pack.meta
    return Explanation(
        pack=pack.id,
        pack_title=meta.title,
        valid_from=meta.valid_from.isoformat() if meta.valid_from else None,
        valid_to=meta.valid_to.isoformat() if meta.valid_to else None,
        precedence=precedence,
        rules=[
            RuleMatch(
                table=r.table_id,
                rule_id=r.full_id,
                title=r.title,
                matched=[c.describe() for c in r.conditions],
                interpretation=r.interpretation,
            )
            for r in hits
        ],
    )


def incomplete(pack: Pack | None, missing: Sequence[str], precedence: str | None = None) -> Decision:
    fields = order_fields(missing)
    where = f" för att avgöra ärendet enligt «{pack.meta.title}»" if pack else ""
    return Decision(
        status="incomplete",
        missing=fields,
        reason=f"Uppgifter saknas{where}: {', '.join(fields)}",
        explanation=explanation(pack, precedence=precedence),
    )


def no_agreement(
    reason: str, pack: Pack | None = None, hits: Sequence[Rule] = (), also: Sequence[Rule] = ()
) -> Decision:
    """``hits`` explain the answer; ``also`` fired in other tables and are listed for the record."""
    return Decision(
        status="no_agreement",
        reason=reason,
        rule_id=hits[0].full_id if hits else None,
        rule_ids=[r.full_id for r in [*hits, *also]],
        citations=[pack.cite_text(c) for r in hits for c in r.cite] if pack else [],
        actions=[a for r in hits for a in r.outputs.actions],
        explanation=explanation(pack, hits),
    )


def no_pack(kind: str, care_region: str | None, home_region: str | None) -> Decision:
    return no_agreement(
        "Inget av de inlästa avtalen omfattar ärendet "
        f"(ärendetyp {kind}, vårdregion {care_region or 'okänd'}, hemregion {home_region or 'okänd'})."
    )


def conflict(pack_ids: Sequence[str]) -> Decision:
    ids = ", ".join(pack_ids)
    return no_agreement(f"Flera avtal omfattar ärendet lika specifikt ({ids}); ett av dem måste avgränsas.")


def out_of_force(packs: Sequence[Pack]) -> Decision:
    parts = [f"«{p.meta.title}» ({p.id}) gäller {p.validity_text()}" for p in packs]
    return Decision(
        status="no_agreement",
        reason="Ärendets datum ligger utanför avtalets giltighetstid: " + "; ".join(parts),
        citations=[p.cite_text(c) for p in packs for c in p.meta.validity_cite],
        explanation=Explanation(pack=packs[0].id, pack_title=packs[0].meta.title),
    )


def _party(value: str | None, values: dict[str, Any]) -> str | None:
    return fill(value, values) if value else None


def _recipient(pack: Pack, ref: str, values: dict[str, Any]) -> Recipient:
    if ref in pack.meta.recipients:
        data = pack.meta.recipients[ref]
        return Recipient(id=ref, **data.model_dump(exclude={"cite"}))
    party = fill(ref, values)
    return Recipient(id=party, name=codes.party_name(party))


def _contact(pack: Pack, ref: str, values: dict[str, Any]) -> Contact:
    if ref in pack.meta.contacts:
        return Contact(**pack.meta.contacts[ref].model_dump())
    party = fill(ref, values)
    return Contact(party=party, name=codes.party_name(party))


def _first_things_first(hits: Sequence[Rule]) -> list[Rule]:
    """Rules that demand contact before acting put their steps first: that is what comes first."""
    return sorted(hits, key=lambda r: not r.outputs.prior_contact_required)


def decided(pack: Pack, hits: Sequence[Rule], values: dict[str, Any], precedence: str | None) -> Decision:
    """Merge the outputs of one hit per table; ``values`` must hold every template field."""
    missing = [f for r in hits for f in r.template_fields if values.get(f) is None]
    if missing:
        return incomplete(pack, missing, precedence)
    blocking = next((r for r in hits if r.outputs.status == "no_agreement"), None)
    if blocking is not None:
        reason = fill(blocking.outputs.reason or "", values)
        return no_agreement(reason, pack, [blocking], [r for r in hits if r is not blocking])
    merged: dict[str, Any] = {}
    for rule in hits:
        for key, value in rule.outputs.model_dump(exclude_none=True).items():
            if key not in ("status", "reason", "actions"):
                merged[key] = value
    invoice = None
    if "invoice" in merged:
        inv = merged["invoice"]
        invoice = InvoiceSpec(
            recipient=_recipient(pack, inv["recipient"], values),
            channel=inv.get("channel"),
            required_fields=[fill(f, values) for f in inv["required_fields"]],
            forbidden_fields=inv["forbidden_fields"],
        )
    return Decision(
        status="decided",
        decider=_party(merged.get("decider"), values),
        payer=_party(merged.get("payer"), values),
        payer_note=fill(merged["payer_note"], values) if "payer_note" in merged else None,
        invoicer=_party(merged.get("invoicer"), values),
        prior_contact_required=bool(merged.get("prior_contact_required", False)),
        contact=_contact(pack, merged["contact"], values) if "contact" in merged else None,
        payment_commitment_required=bool(merged.get("payment_commitment_required", False)),
        actions=[fill(a, values) for r in _first_things_first(hits) for a in r.outputs.actions],
        invoice=invoice,
        rule_id=hits[0].full_id,
        rule_ids=[r.full_id for r in hits],
        citations=list(dict.fromkeys(pack.cite_text(c) for r in hits for c in r.cite)),
        explanation=explanation(pack, hits, precedence),
    )
