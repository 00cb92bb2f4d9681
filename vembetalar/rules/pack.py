"""Loading rule packs from their folders and compiling them into conditions the engine runs.

A pack that does not load says which file, which rule and which field is wrong: the people who
maintain agreements are pharmacists and administrators, not Python programmers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vembetalar.model.case import case_fields
from vembetalar.rules.conditions import Condition, ConditionError, parse_conditions
from vembetalar.rules.schema import (
    OUTPUT_SCALARS,
    CitationData,
    InvoicingData,
    Outputs,
    PackMeta,
    RulesFile,
    TestsFile,
)

M = TypeVar("M", bound=BaseModel)
TEMPLATE = re.compile(r"\{([a-z_]+\.[a-z_]+)(:name)?\}")
PACKS_ENV = "VEMBETALAR_PACKS"


class PackError(Exception):
    """A pack cannot be loaded; the message names the file, the rule and the field."""


@dataclass(frozen=True, eq=False)
class Rule:
    pack_id: str
    table_id: str
    id: str
    title: str
    conditions: tuple[Condition, ...]
    outputs: Outputs
    cite: tuple[str, ...]
    interpretation: str | None
    template_fields: tuple[str, ...]
    #: Positions of this rule's conditions in ``Pack.conditions`` (the pack's distinct tests).
    condition_index: tuple[int, ...] = ()

    @property
    def full_id(self) -> str:
        return f"{self.pack_id}/{self.id}"


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    hit_policy: str
    rules: tuple[Rule, ...]

    def fields(self) -> list[str]:
        return list(dict.fromkeys(c.field for r in self.rules for c in r.conditions))

    @cached_property
    def outputs(self) -> frozenset[str]:
        """The outputs this table's rules set (each output belongs to one table of a pack)."""
        return frozenset(k for r in self.rules for k in OUTPUT_SCALARS if getattr(r.outputs, k) is not None)


@dataclass(frozen=True, eq=False)
class Pack:
    """One agreement, loaded and compiled. Compared by identity, so caches can key on it."""

    meta: PackMeta
    scope: tuple[Condition, ...]
    tables: tuple[Table, ...]
    tests: TestsFile | None
    source_text: str
    path: Path
    citations: dict[str, CitationData] = field(default_factory=dict)
    #: The distinct tests the pack's rules make; a case is summed up by their truth values.
    conditions: tuple[Condition, ...] = ()

    @property
    def id(self) -> str:
        return self.meta.id

    def in_force(self, day: dt.date) -> bool:
        start, end = self.meta.valid_from, self.meta.valid_to
        return (start is None or start <= day) and (end is None or day <= end)

    def validity_text(self) -> str:
        start = self.meta.valid_from.isoformat() if self.meta.valid_from else "…"
        end = self.meta.valid_to.isoformat() if self.meta.valid_to else "tills vidare"
        return f"{start} – {end}"

    def invoicing_for(self, recipient_id: str | None, rule_ids: Sequence[str] = ()) -> InvoicingData | None:
        """How this agreement's invoice to ``recipient_id`` is made (``"*"`` covers any). The
        own entry of a rule the decision rests on (``rule_ids`` as the decision names them,
        ``pack/rule``, in its order) comes first."""
        if self.meta.invoicing is None:
            return None
        for rule_id in rule_ids:
            by_rule = self.meta.invoicing.rules.get(rule_id.rsplit("/", 1)[-1])
            if by_rule is not None:
                return by_rule
        found = self.meta.invoicing.recipients
        return found.get(recipient_id or "") or found.get("*")

    def rules(self) -> tuple[Rule, ...]:
        """Every rule, table by table."""
        return self._rules

    @cached_property
    def _rules(self) -> tuple[Rule, ...]:
        return tuple(r for t in self.tables for r in t.rules)

    def cite_text(self, citation_id: str) -> str:
        """A citation as a reader finds it: the agreement's title and section, then the words."""
        c = self.citations[citation_id]
        return f"{self.meta.title}, {c.section}: «{c.quote}»"


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise PackError(f"{path}: filen saknas") from None
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: ogiltig YAML: {exc}") from None


def _locate(raw: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location into 'tabell X, regel Y, fält a.b' using the ids in the raw data."""
    labels = {"tables": "tabell", "rules": "regel", "cases": "testfall"}
    parts: list[str] = []
    rest: list[str] = []
    node = raw
    previous: Any = None
    for step in loc:
        if isinstance(node, list) and isinstance(step, int) and str(previous) in labels:
            node = node[step] if step < len(node) else None
            label = node.get("name" if previous == "cases" else "id") if isinstance(node, dict) else None
            kind = labels[str(previous)]
            parts.append(f"{kind} {label!r}" if label else f"{kind} nr {step + 1}")
            rest = []
        else:
            node = (
                node.get(step)
                if isinstance(node, dict)
                else (
                    node[step]
                    if isinstance(node, list) and isinstance(step, int) and step < len(node)
                    else None
                )
            )
            if str(step) not in labels:
                rest.append(f"[{step}]" if isinstance(step, int) else str(step))
        previous = step
    if rest:
        parts.append("fält " + repr(".".join(rest).replace(".[", "[")))
    return ", ".join(parts)


def _validate(model: type[M], raw: Any, path: Path) -> M:
    if not isinstance(raw, dict):
        raise PackError(f"{path}: ska innehålla en YAML-mappning")
    # Top-level keys starting with "x-" hold YAML anchors for repeated outputs; they are not data.
    raw = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _locate(raw, tuple(err["loc"]))
        raise PackError(f"{path}: {where}: {err['msg']}") from None


def _templates(outputs: Outputs) -> list[str]:
    texts: list[str] = [v for v in (outputs.decider, outputs.payer, outputs.invoicer, outputs.contact) if v]
    texts += [t for t in (outputs.reason, outputs.payer_note) if t]
    texts += outputs.actions
    if outputs.invoice and outputs.invoice.recipient:
        texts.append(outputs.invoice.recipient)
    if outputs.first_share:
        texts.append(outputs.first_share.payer)
    return list(dict.fromkeys(m.group(1) for t in texts for m in TEMPLATE.finditer(t)))


PARAM_TEXT = re.compile(r"\{param\.([a-z0-9_]+)\}")


def _format_param(value: int | float) -> str:
    """Swedish number style for texts: 10 000, 2,5."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,}".replace(",", " ").replace(".", ",")
    return f"{int(value):,}".replace(",", " ")


def _with_params(raw: Any, params: dict[str, int | float], where: str) -> Any:
    """Put the pack's named values into a rule's outputs: ``{param.x}`` in texts, and
    ``{param: x}`` as a value (e.g. ``max_days``)."""
    if isinstance(raw, str):

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise PackError(f"{where}: okänd parameter {name!r} i text")
            return _format_param(params[name])

        return PARAM_TEXT.sub(one, raw)
    if isinstance(raw, dict):
        if list(raw) == ["param"]:
            name = str(raw["param"])
            if name not in params:
                raise PackError(f"{where}: okänd parameter {name!r}")
            return params[name]
        return {k: _with_params(v, params, where) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_with_params(v, params, where) for v in raw]
    return raw


def _check_reference(meta: PackMeta, ref: str, kind: str) -> bool:
    pool = meta.recipients if kind == "recipient" else meta.contacts
    return ref in pool or re.match(r"^(region|kommun):", ref) is not None


def load_pack(folder: Path) -> Pack:
    """Load and compile one pack folder: pack.yaml, rules.yaml, tests.yaml and the source text."""
    fields = case_fields()
    meta_path, rules_path, tests_path = (folder / n for n in ("pack.yaml", "rules.yaml", "tests.yaml"))
    meta = _validate(PackMeta, _read_yaml(meta_path), meta_path)
    if meta.id != folder.name:
        raise PackError(f"{meta_path}: fält 'id': {meta.id!r} ska vara lika med mappnamnet")
    if meta.valid_from and meta.valid_to and meta.valid_to < meta.valid_from:
        raise PackError(f"{meta_path}: fält 'valid_to': slutar före valid_from")
    params = {name: p.value for name, p in meta.parameters.items()}
    try:
        scope = tuple(parse_conditions(meta.scope, fields, meta.sets, params))
    except ConditionError as exc:
        raise PackError(f"{meta_path}: fält 'scope.{exc.field}': {exc.reason}") from None
    for cid in meta.validity_cite:
        if cid not in meta.citations:
            raise PackError(f"{meta_path}: fält 'validity_cite': okänd citering {cid!r}")
    for name, param in meta.parameters.items():
        for cid in param.cite:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: parameter {name!r}: okänd citering {cid!r}")
    if meta.id in meta.overrides or meta.id in meta.yields_to:
        raise PackError(f"{meta_path}: fält 'overrides': ett paket kan inte ha företräde framför sig självt")
    for name, recipient in meta.recipients.items():
        for cid in recipient.cite:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: mottagare {name!r}: okänd citering {cid!r}")
    for name, contact in meta.contacts.items():
        for cid in contact.cite:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: kontakt {name!r}: okänd citering {cid!r}")
    for name, clearance in meta.clearances.items():
        if clearance.by not in meta.contacts:
            raise PackError(f"{meta_path}: klartecken {name!r}: okänd kontakt {clearance.by!r}")
        cited = [*clearance.cite, *clearance.inactive_cite, *clearance.returning_cite]
        cited += clearance.request.cite if clearance.request else []
        for cid in cited:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: klartecken {name!r}: okänd citering {cid!r}")
    for name, invoicing in (meta.invoicing.recipients if meta.invoicing else {}).items():
        if name != "*" and name not in meta.recipients:
            raise PackError(f"{meta_path}: invoicing.recipients: okänd mottagare {name!r}")
        for cid in invoicing.cite:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: invoicing.recipients.{name}: okänd citering {cid!r}")
        ref = invoicing.buyer_reference
        if ref and name != "*" and getattr(meta.recipients[name], ref) is None:
            raise PackError(f"{meta_path}: invoicing.recipients.{name}: mottagaren saknar {ref}")
    for name, invoicing in (meta.invoicing.rules if meta.invoicing else {}).items():
        for cid in invoicing.cite:
            if cid not in meta.citations:
                raise PackError(f"{meta_path}: invoicing.rules.{name}: okänd citering {cid!r}")

    rules_raw = _read_yaml(rules_path)
    if isinstance(rules_raw, dict):
        for t in rules_raw.get("tables") or []:
            for r in (t.get("rules") or []) if isinstance(t, dict) else []:
                if isinstance(r, dict) and "then" in r:
                    where = f"{rules_path}: tabell {t.get('id')!r}, regel {r.get('id')!r}, fält 'then'"
                    r["then"] = _with_params(r["then"], params, where)
    rules_file = _validate(RulesFile, rules_raw, rules_path)
    tables: list[Table] = []
    seen_rules: set[str] = set()
    output_owner: dict[str, str] = {}
    for table in rules_file.tables:
        compiled: list[Rule] = []
        for rule in table.rules:
            where = f"{rules_path}: tabell {table.id!r}, regel {rule.id!r}"
            if rule.id in seen_rules:
                raise PackError(f"{where}, fält 'id': regel-id används redan i paketet")
            seen_rules.add(rule.id)
            try:
                conditions = tuple(parse_conditions(rule.when, fields, meta.sets, params))
            except ConditionError as exc:
                raise PackError(f"{where}, fält 'when.{exc.field}': {exc.reason}") from None
            for cid in rule.cite:
                if cid not in meta.citations:
                    raise PackError(f"{where}, fält 'cite': okänd citering {cid!r}")
            out = rule.then
            if out.status == "no_agreement" and not out.reason:
                raise PackError(f"{where}, fält 'then.reason': krävs när status är no_agreement")
            if out.contact and not _check_reference(meta, out.contact, "contact"):
                raise PackError(f"{where}, fält 'then.contact': okänd kontakt {out.contact!r}")
            if out.clearance and out.clearance not in meta.clearances:
                raise PackError(f"{where}, fält 'then.clearance': okänt klartecken {out.clearance!r}")
            if out.invoice and out.invoice.recipient is None and not out.invoice.note:
                raise PackError(
                    f"{where}, fält 'then.invoice.note': krävs när avtalet inte anger någon mottagare"
                )
            if (
                out.invoice
                and out.invoice.recipient is not None
                and not _check_reference(meta, out.invoice.recipient, "recipient")
            ):
                raise PackError(
                    f"{where}, fält 'then.invoice.recipient': okänd mottagare {out.invoice.recipient!r}"
                )
            if out.first_share and isinstance(out.first_share.max_days, dict):
                raise PackError(f"{where}, fält 'then.first_share.max_days': ska vara ett heltal")
            template_fields = _templates(out)
            for name in template_fields:
                if name not in fields:
                    raise PackError(f"{where}, fält 'then': okänt ärendefält {{{name}}} i mall")
            for key in OUTPUT_SCALARS:
                if getattr(out, key) is not None:
                    owner = output_owner.setdefault(key, table.id)
                    if owner != table.id:
                        raise PackError(f"{where}, fält 'then.{key}': sätts redan av tabell {owner!r}")
            compiled.append(
                Rule(
                    pack_id=meta.id,
                    table_id=table.id,
                    id=rule.id,
                    title=rule.title,
                    conditions=conditions,
                    outputs=out,
                    cite=tuple(rule.cite),
                    interpretation=rule.interpretation,
                    template_fields=tuple(template_fields),
                )
            )
        tables.append(Table(table.id, table.title, table.hit_policy, tuple(compiled)))

    # The pack's distinct tests, so that a case is summed up by one truth value per test.
    distinct: dict[tuple[str, str, Any], int] = {}
    for t in tables:
        for r in t.rules:
            for c in r.conditions:
                distinct.setdefault(c.key, len(distinct))
    canonical: dict[int, Condition] = {}
    for t_index, t in enumerate(tables):
        indexed = []
        for r in t.rules:
            index = tuple(distinct[c.key] for c in r.conditions)
            for i, c in zip(index, r.conditions, strict=True):
                canonical.setdefault(i, c)
            indexed.append(replace(r, condition_index=index))
        tables[t_index] = replace(t, rules=tuple(indexed))
    conditions = tuple(canonical[i] for i in range(len(distinct)))
    for name in meta.invoicing.rules if meta.invoicing else {}:
        if name not in seen_rules:
            raise PackError(f"{meta_path}: invoicing.rules: okänd regel {name!r}")

    tests = None
    if tests_path.exists():
        tests = _validate(TestsFile, _read_yaml(tests_path), tests_path)
    source_path = folder / meta.source.excerpt
    try:
        source_text = source_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(f"{meta_path}: fält 'source.excerpt': {source_path} saknas") from None
    return Pack(meta, scope, tuple(tables), tests, source_text, folder, dict(meta.citations), conditions)


def bundled_pack_dir() -> Path:
    return Path(str(resources.files("vembetalar.packs")))


def pack_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Bundled packs, then folders named in $VEMBETALAR_PACKS, then those given explicitly."""
    roots = [bundled_pack_dir()]
    env = os.environ.get(PACKS_ENV, "")
    roots += [Path(p) for p in env.split(os.pathsep) if p]
    roots += list(extra)
    found: list[Path] = []
    for root in roots:
        if (root / "pack.yaml").exists():
            found.append(root)
        elif root.is_dir():
            found += sorted(p.parent for p in root.glob("*/pack.yaml"))
        else:
            raise PackError(f"{root}: mappen med regelpaket finns inte")
    return found


def load_packs(extra: Iterable[Path] = ()) -> list[Pack]:
    packs = [load_pack(d) for d in pack_dirs(extra)]
    ids = [p.id for p in packs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PackError(f"regelpaket med samma id laddas två gånger: {', '.join(dupes)}")
    check_precedence(packs)
    return packs


def check_precedence(packs: Iterable[Pack]) -> dict[str, frozenset[str]]:
    """Which packs each pack takes precedence over, directly or through others.

    Unknown ids and cycles are load errors: precedence is what settles a case two agreements
    both cover, so it must be declared and consistent."""
    by_id = {p.id: p for p in packs}
    direct: dict[str, set[str]] = {i: set() for i in by_id}
    for p in by_id.values():
        for key, others in (("overrides", p.meta.overrides), ("yields_to", p.meta.yields_to)):
            for other in others:
                if other not in by_id:
                    raise PackError(f"{p.path / 'pack.yaml'}: fält {key!r}: okänt paket {other!r}")
                if key == "overrides":
                    direct[p.id].add(other)
                else:
                    direct[other].add(p.id)
    closure: dict[str, frozenset[str]] = {}
    for start in by_id:
        seen: set[str] = set()
        todo = list(direct[start])
        while todo:
            nxt = todo.pop()
            if nxt == start:
                raise PackError(f"{by_id[start].path / 'pack.yaml'}: fält 'overrides': cirkulärt företräde")
            if nxt not in seen:
                seen.add(nxt)
                todo += direct[nxt]
        closure[start] = frozenset(seen)
    return closure
