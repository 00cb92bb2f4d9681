"""The engine: which agreement applies to a case, which of its rules fire, and what follows.

It never guesses. No agreement in force → ``no_agreement`` with the reason; an unknown fact
leaves open only the outputs that depend on it (see ``worlds``), and the case is ``incomplete``
only when the payer does. Which agreement wins where two cover a case is declared in the packs
(``overrides``), never inferred. It never touches a database or the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from vembetalar.model.case import Case
from vembetalar.model.decision import Decision
from vembetalar.rules import outputs
from vembetalar.rules.conditions import all_of, unknown_fields
from vembetalar.rules.pack import Pack, check_precedence
from vembetalar.rules.worlds import Alive, enumerate_worlds, pack_fields, summarised


def precedence_note(winner: Pack, others: Sequence[Pack]) -> str | None:
    if not others:
        return None
    names = ", ".join(f"«{p.meta.title}» ({p.id})" for p in others)
    return (
        f"Även {names} omfattar ärendet, men «{winner.meta.title}» ({winner.id}) har enligt "
        "avtalsdata företräde (overrides)."
    )


def template_values(pack: Pack, alive: Alive, case: dict[str, Any]) -> dict[str, Any]:
    """The case values an answer may print: the kind, and each template field that a rule which
    could still fire uses (others are left out, so they never make two cases look different)."""
    values: dict[str, Any] = {"kind": case["kind"]}
    for rule, possible in zip(pack.rules(), alive, strict=True):
        for name in rule.template_fields:
            if possible:
                values[name] = case[name]
            else:
                values.setdefault(name, None)
    return values


@lru_cache(maxsize=16_384)
def conclude(
    pack: Pack, alive: Alive, unknown: tuple[str, ...], kind: str, known: frozenset[str], note: str | None
) -> Decision:
    """From a case's summary (``worlds.summarise``) to the Decision, with the case's own values
    as placeholders (``known``: the template fields that have one). Shared and cached — the
    batch path calls it once per distinct summary — so never changed: see ``realise``."""
    worlds = enumerate_worlds(pack, alive, unknown, kind)
    if worlds.too_many:
        return outputs.incomplete(pack, list(worlds.unknown), note)
    answers = [outputs.answer(pack, outcome, known) for outcome in worlds.outcomes]
    return outputs.combine(pack, worlds, answers, note)


@lru_cache(maxsize=16_384)
def _with_text(
    pack: Pack, alive: Alive, unknown: tuple[str, ...], kind: str, known: frozenset[str], note: str | None
) -> tuple[Decision, str | None]:
    """The shared Decision, and its JSON when it holds placeholders to fill in."""
    decision = conclude(pack, alive, unknown, kind, known, note)
    text = decision.model_dump_json()
    return decision, (text if "⟦" in text else None)


def realise(decision: Decision, text: str | None, values: dict[str, Any]) -> Decision:
    """The Decision for one case: the shared one as it is (Decisions are frozen) when it has no
    placeholders, else a copy with the case's values put in — only the parts that hold one are
    copied."""
    if text is None:
        return decision
    filled = _filled(decision, values)
    assert isinstance(filled, Decision)
    return filled


def _filled(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return outputs.substitute(value, values) if "⟦" in value else value
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _filled(old, values)
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    if isinstance(value, list):
        items = [_filled(item, values) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


class Engine:
    """Holds the loaded packs; ``decide`` is a pure function of the case."""

    def __init__(self, packs: Sequence[Pack]) -> None:
        self.packs = sorted(packs, key=lambda p: p.id)
        #: pack id → the packs it takes precedence over (transitively).
        self.dominates = check_precedence(self.packs)

    def pack(self, pack_id: str) -> Pack:
        for p in self.packs:
            if p.id == pack_id:
                return p
        raise KeyError(pack_id)

    def overrides(self, winner: Pack, other: Pack) -> bool:
        return other.id in self.dominates[winner.id]

    def decide(self, case: Case) -> Decision:
        return self.decide_flat(case.flat())

    def decide_flat(self, case: dict[str, Any]) -> Decision:
        day = case["date"]
        in_force = [p for p in self.packs if p.in_force(day)]
        truths = {p.id: all_of(p.scope, case) for p in self.packs}
        applicable = [p for p in in_force if truths[p.id]]
        unknown = [p for p in in_force if truths[p.id] is None]
        if applicable:
            top = applicable
            if len(applicable) > 1:
                top = [p for p in applicable if not any(self.overrides(q, p) for q in applicable)]
            if len(top) > 1:
                return outputs.conflict([p.id for p in top])
            pack = top[0]
            # A pack whose scope is unknown matters only if it could take precedence.
            threats = [u for u in unknown if self.overrides(u, pack)]
            if threats:
                return outputs.incomplete(
                    None, [f for u in threats for f in unknown_fields(list(u.scope), case)]
                )
            note = precedence_note(pack, [p for p in applicable if p is not pack])
            return self.decide_in_pack(pack, case, note)
        if unknown:
            return outputs.incomplete(None, [f for u in unknown for f in unknown_fields(list(u.scope), case)])
        lapsed = [p for p in self.packs if truths[p.id] and not p.in_force(day)]
        if lapsed:
            return outputs.out_of_force(lapsed)
        return outputs.no_pack(case["kind"], case["care.region"], case["patient.home_region"])

    def decide_in_pack(self, pack: Pack, case: dict[str, Any], note: str | None = None) -> Decision:
        alive, unknown = summarised(pack, tuple(case[f] for f in pack_fields(pack)))
        values = template_values(pack, alive, case)
        known = frozenset(k for k, v in values.items() if v is not None and k != "kind")
        return realise(*_with_text(pack, alive, unknown, case["kind"], known, note), values)
