"""The engine: which agreement applies to a case, which of its rules fire, and what follows.

It never guesses. No agreement in force → ``no_agreement`` with the reason; a fact the rules need
is unknown → ``incomplete`` naming it. It never touches a database or the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision
from vembetalar.rules import outputs
from vembetalar.rules.conditions import all_of, unknown_fields
from vembetalar.rules.pack import Pack, Rule, Table


@dataclass(frozen=True)
class TableResult:
    hit: Rule | None
    missing: tuple[str, ...] = ()


def evaluate_table(table: Table, case: dict[str, Any]) -> TableResult:
    """Find the rule that fires, honouring the table's hit policy under three-valued logic.

    ``first``: rules in order; an unknown rule before the first true one blocks the answer,
    because it might have fired. ``unique``: at most one rule can be true (``packs check``
    proves it), so a true rule settles it; otherwise any unknown rule blocks.
    """
    missing: list[str] = []
    for rule in table.rules:
        truth = all_of(list(rule.conditions), case)
        if truth is None:
            missing += unknown_fields(list(rule.conditions), case)
        elif truth:
            if table.hit_policy == "first" and missing:
                return TableResult(None, tuple(missing))
            return TableResult(rule)
    return TableResult(None, tuple(dict.fromkeys(missing)))


def scope_truth(pack: Pack, case: dict[str, Any]) -> bool | None:
    return all_of(list(pack.scope), case)


def precedence_note(winner: Pack, others: Sequence[Pack]) -> str | None:
    if not others:
        return None
    names = ", ".join(f"«{p.meta.title}» ({p.id}, {p.specificity} villkor)" for p in others)
    return (
        f"Även {names} omfattar ärendet, men «{winner.meta.title}» ({winner.id}) är mer specifikt "
        f"({winner.specificity} villkor) och har företräde."
    )


class Engine:
    """Holds the loaded packs; ``decide`` is a pure function of the case."""

    def __init__(self, packs: Sequence[Pack]) -> None:
        self.packs = sorted(packs, key=lambda p: p.id)

    def pack(self, pack_id: str) -> Pack:
        for p in self.packs:
            if p.id == pack_id:
                return p
        raise KeyError(pack_id)

    def decide(self, case: Case) -> Decision:
        return self.decide_flat(case.flat())

    def decide_flat(self, case: dict[str, Any]) -> Decision:
        day = case["date"]
        in_force = [p for p in self.packs if p.in_force(day)]
        truths = {p.id: scope_truth(p, case) for p in self.packs}
        unknown = [p for p in in_force if truths[p.id] is None]
        if unknown:
            missing = [f for p in unknown for f in unknown_fields(list(p.scope), case)]
            return outputs.incomplete(None, missing)
        applicable = [p for p in in_force if truths[p.id]]
        if not applicable:
            lapsed = [p for p in self.packs if truths[p.id] and not p.in_force(day)]
            if lapsed:
                return outputs.out_of_force(lapsed)
            return outputs.no_pack(case["kind"], case["care.region"], case["patient.home_region"])
        best = max(p.specificity for p in applicable)
        top = [p for p in applicable if p.specificity == best]
        if len(top) > 1:
            return outputs.conflict([p.id for p in top])
        pack = top[0]
        note = precedence_note(pack, [p for p in applicable if p is not pack])
        return self.decide_in_pack(pack, case, note)

    def decide_in_pack(self, pack: Pack, case: dict[str, Any], note: str | None = None) -> Decision:
        results = [evaluate_table(t, case) for t in pack.tables]
        missing = [f for r in results for f in r.missing]
        return conclude(pack, [r.hit for r in results], missing, case, note)


def conclude(
    pack: Pack,
    hits: Sequence[Rule | None],
    missing: Sequence[str],
    values: dict[str, Any],
    note: str | None = None,
) -> Decision:
    """From one result per table to the Decision; the batch path calls this too.

    Unknown facts come first (``incomplete``), then a rule that says the agreement does not
    cover the case, then a table no rule covers; only then is the case decided.
    """
    if missing:
        return outputs.incomplete(pack, missing, note)
    present = [h for h in hits if h is not None]
    if len(present) < len(hits):
        blocking = [h for h in present if h.outputs.status == "no_agreement"]
        if blocking:
            return outputs.decided(pack, blocking, values, note)
        gap = next(t for t, h in zip(pack.tables, hits, strict=True) if h is None)
        return outputs.no_agreement(
            f"«{pack.meta.title}» har ingen regel i tabellen «{gap.title}» som täcker ärendet.",
            pack,
            present,
        )
    return outputs.decided(pack, present, values, note)
