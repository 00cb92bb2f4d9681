"""Static analysis of rule packs: overlapping rules, gaps, unreachable rules, broken citations.

Every condition splits a field's domain into a few classes (e.g. cost below 10 000 kr, or from
10 000 kr up). We enumerate one representative of each class for every field a table reads —
a handful of points per table — and evaluate the table on each. That is exhaustive for the
condition language we allow, so "no gaps" is proved rather than sampled.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vembetalar.model.case import KIND_AREAS, FieldSpec, case_fields
from vembetalar.rules.conditions import Condition, all_of
from vembetalar.rules.pack import Pack, Table, check_precedence

Severity = Literal["error", "warning"]
MAX_POINTS = 2_000_000


@dataclass(frozen=True)
class Finding:
    pack: str
    severity: Severity
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.pack}: {self.kind}: {self.message}"


def _candidates(spec: FieldSpec, conds: Sequence[Condition]) -> list[Any]:
    if spec.type == "bool":
        return [True, False]
    if spec.type == "category":
        return list(spec.values)
    step = 1 if spec.type == "integer" else 0.5
    points: set[float] = {0}
    for c in conds:
        if c.op in ("lt", "le", "gt", "ge", "eq", "ne"):
            t = float(c.value)
            points |= {t - step, t, t + step}
    return sorted(p for p in points if p >= 0)


def representatives(spec: FieldSpec, conds: Sequence[Condition]) -> list[Any]:
    """One value per class of values that every condition on the field treats alike."""
    seen: dict[tuple[bool | None, ...], Any] = {}
    for value in _candidates(spec, conds):
        signature = tuple(c.test(value) for c in conds)
        seen.setdefault(signature, value)
    return list(seen.values())


def _consistent(point: dict[str, Any]) -> bool:
    kind, area = point.get("kind"), point.get("product.area")
    if kind is not None and area is not None and area not in KIND_AREAS[kind]:
        return False
    muni, region = point.get("patient.home_municipality"), point.get("patient.home_region")
    return not (muni is not None and region is not None and muni[:2] != region)


def points(conditions: Sequence[Condition], extra_fields: Iterable[str] = ()) -> list[dict[str, Any]]:
    """All representative complete inputs for the fields these conditions read."""
    specs = case_fields()
    names = list(dict.fromkeys([*(c.field for c in conditions), *extra_fields]))
    if "product.area" in names and "kind" not in names:
        names.append("kind")
    axes = [representatives(specs[n], [c for c in conditions if c.field == n]) for n in names]
    size = 1
    for axis in axes:
        size *= len(axis)
    if size > MAX_POINTS:
        raise ValueError(f"för många kombinationer att analysera ({size})")
    out = []
    for combo in itertools.product(*axes):
        point = dict(zip(names, combo, strict=True))
        if _consistent(point):
            out.append(point)
    return out


def _show(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def check_table(pack: Pack, table: Table) -> list[Finding]:
    conds = [c for r in table.rules for c in r.conditions]
    scope = list(pack.scope)
    findings: list[Finding] = []
    first_hits: dict[str, int] = {r.id: 0 for r in table.rules}
    any_hits: dict[str, int] = {r.id: 0 for r in table.rules}
    gaps: list[dict[str, Any]] = []
    overlaps: list[tuple[list[str], dict[str, Any]]] = []
    for point in points([*scope, *conds]):
        if all_of(scope, point) is not True:
            continue
        true_rules = [r.id for r in table.rules if all_of(list(r.conditions), point)]
        for rid in true_rules:
            any_hits[rid] += 1
        if not true_rules:
            gaps.append(point)
            continue
        first_hits[true_rules[0]] += 1
        if table.hit_policy == "unique" and len(true_rules) > 1:
            overlaps.append((true_rules, point))
    where = f"tabell {table.id!r}"
    for point in gaps[:5]:
        findings.append(Finding(pack.id, "error", "lucka", f"{where}: ingen regel täcker {_show(point)}"))
    if len(gaps) > 5:
        findings.append(Finding(pack.id, "error", "lucka", f"{where}: {len(gaps) - 5} luckor till"))
    for rules, point in overlaps[:5]:
        findings.append(
            Finding(
                pack.id,
                "error",
                "överlapp",
                f"{where}: reglerna {', '.join(rules)} gäller samtidigt för {_show(point)} "
                "(träffpolicy unique)",
            )
        )
    hits = first_hits if table.hit_policy == "first" else any_hits
    for rid, count in hits.items():
        if count == 0:
            findings.append(
                Finding(pack.id, "error", "onåbar regel", f"{where}: regeln {rid!r} kan aldrig slå till")
            )
    return findings


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def check_citations(pack: Pack) -> list[Finding]:
    findings: list[Finding] = []
    source = _norm(pack.source_text)
    used = {c for r in pack.rules() for c in r.cite}
    used |= {c for rec in pack.meta.recipients.values() for c in rec.cite}
    used |= {c for con in pack.meta.contacts.values() for c in con.cite}
    used |= {c for par in pack.meta.parameters.values() for c in par.cite}
    used |= set(pack.meta.validity_cite)
    for cid, cit in pack.citations.items():
        if cit.document != pack.meta.source.document:
            findings.append(
                Finding(
                    pack.id,
                    "error",
                    "citering",
                    f"{cid!r}: dokumentet {cit.document!r} är inte paketets källa",
                )
            )
        elif _norm(cit.quote) not in source:
            findings.append(
                Finding(pack.id, "error", "citering", f"{cid!r}: citatet finns inte ordagrant i källan")
            )
        if cid not in used:
            findings.append(Finding(pack.id, "warning", "citering", f"{cid!r} används inte av någon regel"))
    for rule in pack.rules():
        if not rule.cite:
            findings.append(Finding(pack.id, "error", "citering", f"regeln {rule.id!r} saknar citering"))
    return findings


def check_pack(pack: Pack) -> list[Finding]:
    findings = check_citations(pack)
    for table in pack.tables:
        findings += check_table(pack, table)
    return findings


def _validity_overlaps(a: Pack, b: Pack) -> bool:
    a_start, a_end = a.meta.valid_from, a.meta.valid_to
    b_start, b_end = b.meta.valid_from, b.meta.valid_to
    return (a_end is None or b_start is None or b_start <= a_end) and (
        b_end is None or a_start is None or a_start <= b_end
    )


def check_packs(packs: Sequence[Pack]) -> list[Finding]:
    """Each pack on its own, then pairs of packs that could both claim a case with no declared
    precedence between them (``overrides``)."""
    findings = [f for p in packs for f in check_pack(p)]
    dominates = check_precedence(packs)
    for a, b in itertools.combinations(packs, 2):
        if b.id in dominates[a.id] or a.id in dominates[b.id] or not _validity_overlaps(a, b):
            continue
        both = [*a.scope, *b.scope]
        clash = next(
            (p for p in points(both) if all_of(list(a.scope), p) and all_of(list(b.scope), p)),
            None,
        )
        if clash is not None:
            findings.append(
                Finding(
                    a.id,
                    "error",
                    "konkurrerande avtal",
                    f"{a.id} och {b.id} omfattar samma ärenden utan deklarerat företräde (overrides), "
                    f"t.ex. {_show(clash)}",
                )
            )
    return findings
