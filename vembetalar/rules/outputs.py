"""From the rules that fired to a Decision. Shared by the single-case and the batch path, so a
decision reads the same wherever it was made.

``answer`` renders what the rules say in one possible world; ``combine`` keeps what every world
agrees on, leaves the rest open and names the facts it waits for (see ``worlds``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from vembetalar.model import codes
from vembetalar.model.case import case_fields
from vembetalar.model.decision import (
    OUTPUTS,
    Clearance,
    Contact,
    Decision,
    Explanation,
    InvoiceSpec,
    Recipient,
    RegistrationRequest,
    RuleMatch,
    Share,
)
from vembetalar.rules.conditions import show_number
from vembetalar.rules.pack import TEMPLATE, Pack, Rule
from vembetalar.rules.worlds import NO_RULE, Worlds, varying_fields

#: vembetalar's own data minimisation: what stays off an invoice unless the agreement asks for it.
MINIMISED_FIELDS = ("Personnummer",)


class _Unknown:
    """An output that needs a fact nobody has filled in."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


def order_fields(names: Sequence[str]) -> list[str]:
    """Missing fields in the order of the case form, so both paths list them alike."""
    catalogue = list(case_fields())
    return sorted(set(names), key=lambda n: catalogue.index(n) if n in catalogue else len(catalogue))


# Answers are worked out once per kind of case, with the case's own values (a region code, a
# municipality) left as placeholders; ``realise`` puts the values in. So a million cases from 290
# municipalities cost one piece of reasoning per situation, not per municipality.
PLACEHOLDER = re.compile(r"⟦([vn]):([^⟧]+)⟧")
PARTY_TEMPLATE = re.compile(r"^(region|kommun):\{([a-z_]+\.[a-z_]+)\}$")


def _party_kind(field_name: str) -> str:
    return "kommun" if case_fields()[field_name].domain == "municipality" else "region"


def symbolic(text: str) -> str:
    """``{patient.home_region}`` → a value placeholder, ``{…:name}`` → a name placeholder."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if match.group(2):
            return f"⟦n:{_party_kind(name)}:{name}⟧"
        return f"⟦v:{name}⟧"

    return TEMPLATE.sub(one, text)


def party_name(party: str) -> str:
    """The readable name of a party that may still hold a placeholder (``region:{…}``)."""
    match = re.fullmatch(r"(region|kommun):⟦v:([^⟧]+)⟧", party)
    if match:
        return f"⟦n:{match.group(1)}:{match.group(2)}⟧"
    return codes.party_name(party)


def substitute(text: str, values: dict[str, Any]) -> str:
    """Put the case's values into placeholders; JSON-safe (codes and names need no escaping,
    and anything else is escaped as a JSON string body)."""

    def one(match: re.Match[str]) -> str:
        if match.group(1) == "v":
            shown = show_number(values[match.group(2)])
        else:
            kind, _, name = match.group(2).partition(":")
            shown = codes.party_name(f"{kind}:{values[name]}")
        return json.dumps(shown, ensure_ascii=False)[1:-1]

    return PLACEHOLDER.sub(one, text)


def explanation(
    pack: Pack | None,
    hits: Sequence[tuple[Rule, bool]] = (),
    precedence: str | None = None,
) -> Explanation:
    """``hits``: the rules that explain the answer, each with whether it is one alternative."""
    if pack is None:
        return Explanation(precedence=precedence)
    meta = pack.meta
    return Explanation(
        pack=pack.id,
        pack_title=meta.title,
        valid_from=meta.valid_from.isoformat() if meta.valid_from else None,
        valid_to=meta.valid_to.isoformat() if meta.valid_to else None,
        precedence=precedence,
        rules=[_match(r, alternative).model_copy() for r, alternative in hits],
    )


@lru_cache(maxsize=4096)
def _match(rule: Rule, alternative: bool) -> RuleMatch:
    return RuleMatch(
        table=rule.table_id,
        rule_id=rule.full_id,
        title=rule.title,
        matched=[c.describe() for c in rule.conditions],
        interpretation=rule.interpretation,
        alternative=alternative,
    )


def incomplete(pack: Pack | None, missing: Sequence[str], precedence: str | None = None) -> Decision:
    """Nothing can be answered yet: which agreement applies depends on what is missing."""
    fields = order_fields(missing)
    where = f" för att avgöra ärendet enligt «{pack.meta.title}»" if pack else ""
    return Decision(
        status="incomplete",
        prior_contact_required=None,
        payment_commitment_required=None,
        missing=fields,
        undetermined=list(OUTPUTS),
        reason=f"Uppgifter saknas{where}: {', '.join(fields)}",
        explanation=explanation(pack, precedence=precedence),
    )


def no_agreement(reason: str, pack: Pack | None = None) -> Decision:
    return Decision(status="no_agreement", reason=reason, explanation=explanation(pack))


def no_pack(kind: str, care_region: str | None, home_region: str | None) -> Decision:
    return no_agreement(
        "Inget av de inlästa avtalen omfattar ärendet "
        f"(ärendetyp {kind}, vårdregion {care_region or 'okänd'}, hemregion {home_region or 'okänd'})."
    )


def conflict(pack_ids: Sequence[str]) -> Decision:
    ids = ", ".join(pack_ids)
    return no_agreement(
        f"Flera avtal omfattar ärendet och inget av dem har deklarerat företräde ({ids}); "
        "paketen måste avgränsas eller ange overrides."
    )


def out_of_force(packs: Sequence[Pack]) -> Decision:
    parts = [f"«{p.meta.title}» ({p.id}) gäller {p.validity_text()}" for p in packs]
    return Decision(
        status="no_agreement",
        reason="Ärendets datum ligger utanför avtalets giltighetstid: " + "; ".join(parts),
        citations=[p.cite_text(c) for p in packs for c in p.meta.validity_cite],
        explanation=Explanation(pack=packs[0].id, pack_title=packs[0].meta.title),
    )


@dataclass
class Answer:
    """What the rules say in one possible world. Outputs needing an unknown template field are
    UNKNOWN; ``gaps`` names those fields. Values of known fields are placeholders."""

    status: str
    reason: str | None
    outputs: dict[str, Any]
    actions: list[str]
    blocking: Rule | None
    gaps: frozenset[str] = frozenset()
    signatures: dict[str, str] = field(default_factory=dict)


def _first_things_first(hits: Sequence[Rule]) -> list[Rule]:
    """Steps in the order they happen: contact before acting, then the first part of a split
    cost (the discharge week), then the rest."""
    return sorted(hits, key=lambda r: (not r.outputs.prior_contact_required, r.outputs.first_share is None))


@lru_cache(maxsize=65_536)
def answer(pack: Pack, outcome: tuple[int, ...], known: frozenset[str]) -> Answer:
    """The answer in a world where ``outcome`` gives the rule that fires in each table (or
    NO_RULE) and the template fields in ``known`` have values. Shared, so never changed."""
    hits = [t.rules[h] if h != NO_RULE else None for t, h in zip(pack.tables, outcome, strict=True)]
    result = _answer(pack, hits, known)
    result.signatures = {o: _signature(result.outputs[o]) for o in OUTPUTS}
    return result


@lru_cache(maxsize=4096)
def _citations(pack: Pack, rule: Rule) -> tuple[str, ...]:
    """The sentences a rule cites, where the rule contributes to the answer; a rule that only
    records that nothing applies (``then: {}``) stays in the explanation but quotes nothing."""
    contributes = rule.outputs.status == "no_agreement" or rule.outputs.actions or _set_outputs(rule)
    return tuple(pack.cite_text(c) for c in rule.cite) if contributes else ()


@lru_cache(maxsize=4096)
def _set_outputs(rule: Rule) -> dict[str, Any]:
    """The outputs a rule sets, as plain data (shared: read only)."""
    data = rule.outputs.model_dump(exclude_none=True)
    return {k: v for k, v in data.items() if k not in ("status", "reason", "actions")}


def _answer(pack: Pack, hits: Sequence[Rule | None], known: frozenset[str]) -> Answer:
    gaps: set[str] = set()

    def text(value: str | None) -> Any:
        if value is None:
            return None
        needed = [m.group(1) for m in TEMPLATE.finditer(value) if m.group(1) not in known]
        if needed:
            gaps.update(needed)
            return UNKNOWN
        return symbolic(value)

    empty = dict.fromkeys(OUTPUTS)
    empty["shares"] = []
    blocking = next((r for r in hits if r is not None and r.outputs.status == "no_agreement"), None)
    if blocking is not None:
        reason = text(blocking.outputs.reason or "")
        actions = [a for a in (text(x) for x in blocking.outputs.actions) if a is not UNKNOWN]
        reason = reason if reason is not UNKNOWN else None
        return Answer("no_agreement", reason, empty, actions, blocking, frozenset(gaps))
    if any(h is None for h in hits):
        gap = next(t for t, h in zip(pack.tables, hits, strict=True) if h is None)
        reason = f"«{pack.meta.title}» har ingen regel i tabellen «{gap.title}» som täcker ärendet."
        return Answer("no_agreement", reason, empty, [], None, frozenset(gaps))
    present = [h for h in hits if h is not None]
    merged: dict[str, Any] = {}
    for rule in present:
        merged.update(_set_outputs(rule))
    out: dict[str, Any] = dict(empty)
    out["decider"] = text(merged.get("decider"))
    out["payer"] = text(merged.get("payer"))
    out["payer_note"] = text(merged.get("payer_note"))
    out["invoicer"] = text(merged.get("invoicer"))
    out["prior_contact_required"] = bool(merged.get("prior_contact_required", False))
    out["payment_commitment_required"] = bool(merged.get("payment_commitment_required", False))
    if "contact" in merged:
        out["contact"] = _contact(pack, merged["contact"], text)
    if "invoice" in merged:
        out["invoice"] = _invoice(pack, merged["invoice"], text)
    if "clearance" in merged:
        out["clearance"] = _clearance(pack, merged["clearance"])
    if "first_share" in merged:
        share = merged["first_share"]
        first, rest = text(share["payer"]), out["payer"]
        if first is UNKNOWN or rest is UNKNOWN:
            out["shares"] = UNKNOWN
        else:
            out["shares"] = [
                Share(payer=first, what=share["what"], max_days=share.get("max_days")),
                Share(payer=rest, what=share.get("then", "därefter")),
            ]
        out["payer"] = first
    actions = [text(a) for r in _first_things_first(present) for a in r.outputs.actions]
    return Answer("decided", None, out, [a for a in actions if a is not UNKNOWN], None, frozenset(gaps))


def _contact(pack: Pack, ref: str, text: Any) -> Any:
    if ref in pack.meta.contacts:
        return Contact(**pack.meta.contacts[ref].model_dump(exclude={"cite"}))
    party = text(ref)
    return UNKNOWN if party is UNKNOWN else Contact(party=party, name=party_name(party))


@lru_cache(maxsize=256)
def _clearance(pack: Pack, ref: str) -> Clearance:
    data = pack.meta.clearances[ref]
    by = pack.meta.contacts[data.by]
    request = None
    if data.request is not None:
        request = RegistrationRequest(**data.request.model_dump(exclude={"cite"}))
    return Clearance(
        id=ref,
        title=data.title,
        system=data.system,
        by=Contact(**by.model_dump(exclude={"cite"})),
        reason=pack.citations[data.cite[0]].quote,
        request=request,
        inactive=data.inactive,
        returning=data.returning,
    )


def _invoice(pack: Pack, inv: dict[str, Any], text: Any) -> Any:
    recipient = None
    ref = inv.get("recipient")
    if ref in pack.meta.recipients:
        data = pack.meta.recipients[ref]
        recipient = Recipient(id=ref, **data.model_dump(exclude={"cite"}))
    elif ref is not None:
        party = text(ref)
        if party is UNKNOWN:
            return UNKNOWN
        recipient = Recipient(id=party, name=party_name(party))
    required = [text(f) for f in inv.get("required_fields", [])]
    if UNKNOWN in required:
        return UNKNOWN
    return InvoiceSpec(
        recipient=recipient,
        channel=inv.get("channel"),
        required_fields=required,
        forbidden_fields=inv.get("forbidden_fields", []),
        not_needed_fields=[f for f in MINIMISED_FIELDS if not any(f in r for r in required)],
        note=inv.get("note"),
    )


UNKNOWN_SIGNATURE = "\0unknown"


def _signature(value: Any) -> str:
    if value is UNKNOWN:
        return UNKNOWN_SIGNATURE
    if isinstance(value, list):
        return json.dumps([_plain(v) for v in value], sort_keys=True, ensure_ascii=False)
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False)


def _plain(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def combine(
    pack: Pack,
    worlds: Worlds,
    answers: Sequence[Answer],
    precedence: str | None = None,
) -> Decision:
    """Keep what every possible world agrees on; leave the rest open and say what it waits for."""
    if worlds.too_many:
        return incomplete(pack, list(worlds.unknown), precedence)
    statuses = {a.status for a in answers}
    undetermined = [
        o
        for o in OUTPUTS
        if len({a.signatures[o] for a in answers}) > 1 or answers[0].signatures[o] == UNKNOWN_SIGNATURE
    ]
    tracked = [*undetermined, *(["status"] if len(statuses) > 1 else [])]
    missing: list[str] = []
    if len(answers) > 1:
        labels: dict[tuple[str, ...], int] = {}
        per_outcome = [
            labels.setdefault(
                tuple(a.status if o == "status" else a.signatures[o] for o in tracked), len(labels)
            )
            for a in answers
        ]
        missing = varying_fields(worlds, per_outcome)
    # A template field is asked for when every possible world needs it; where only some do,
    # the fact that decides between the worlds is asked for first.
    gaps = frozenset.intersection(*(a.gaps for a in answers))
    missing = order_fields([*missing, *gaps])

    # Rules that fire in every world explain the answer; where a table's rule depends on an
    # unknown fact but every output it sets is known anyway, each candidate is shown as such.
    certain: list[Rule] = []
    explained: list[tuple[Rule, bool]] = []
    open_outputs = set(tracked)
    for t_index, table in enumerate(pack.tables):
        positions = list(dict.fromkeys(o[t_index] for o in worlds.outcomes))
        rules = [table.rules[p] for p in positions if p != NO_RULE]
        if len(positions) == 1:
            certain += rules
            explained += [(r, False) for r in rules]
        elif not (table.outputs & open_outputs) and "status" not in open_outputs:
            explained += [(r, True) for r in rules]

    first = answers[0]
    common_actions = [a for a in first.actions if all(a in other.actions for other in answers[1:])]
    common_actions = list(dict.fromkeys(common_actions))

    if statuses == {"no_agreement"}:
        blocking = first.blocking if all(a.blocking is first.blocking for a in answers) else None
        reasons = {a.reason for a in answers}
        reasons_for = [blocking] if blocking is not None else []
        others = [r for r in certain if r is not blocking]
        return Decision(
            status="no_agreement",
            reason=first.reason if len(reasons) == 1 else f"«{pack.meta.title}» omfattar inte ärendet.",
            rule_id=blocking.full_id if blocking else None,
            rule_ids=[r.full_id for r in [*reasons_for, *others]],
            citations=list(dict.fromkeys(c for r in reasons_for for c in _citations(pack, r))),
            actions=common_actions,
            missing=missing,
            explanation=explanation(pack, [(r, False) for r in reasons_for], precedence),
        )

    values = {o: (None if o in undetermined else first.outputs[o]) for o in OUTPUTS}
    if values["shares"] is None:
        values["shares"] = []
    payer_open = "payer" in undetermined or "shares" in undetermined or len(statuses) > 1
    status = "incomplete" if payer_open else "decided"
    if len(statuses) > 1:
        undetermined = list(OUTPUTS)
        values = {**dict.fromkeys(OUTPUTS), "shares": []}
    return Decision(
        status=status,
        **values,
        actions=common_actions,
        rule_id=explained[0][0].full_id if explained else None,
        rule_ids=[r.full_id for r, _ in explained],
        citations=list(dict.fromkeys(c for r, _ in explained for c in _citations(pack, r))),
        missing=missing,
        undetermined=undetermined,
        reason=(
            f"Uppgifter saknas för att avgöra vem som betalar enligt «{pack.meta.title}»: "
            + ", ".join(missing)
            if status == "incomplete"
            else None
        ),
        explanation=explanation(pack, explained, precedence),
    )
