"""Deciding many cases at once, vectorised with Polars.

Each of a pack's distinct tests compiles to a Polars expression (null = unknown, Kleene logic),
so a million cases cost a few hundred column operations, not a million Python calls. A row is
then summed up by a small *key* — the chosen pack, the truth of every test packed into integers,
the kind of case, and the values that output templates could print — and each distinct key (a
few hundred in practice) is turned into a Decision by the very same ``conclude`` the single-case
engine uses. Batch and single answers are therefore the same by construction, and a test checks
it on random cases.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from vembetalar.model.case import case_fields
from vembetalar.model.decision import Decision
from vembetalar.rules import outputs
from vembetalar.rules.conditions import all_of_expr
from vembetalar.rules.engine import Engine, conclude, precedence_note
from vembetalar.rules.pack import Pack
from vembetalar.rules.worlds import pack_fields

NO_PACK, SCOPE_INCOMPLETE, CONFLICT = -1, -2, -3
BITS = 64

SUMMARY_COLUMNS = (
    "status",
    "decider",
    "payer",
    "shares",
    "invoicer",
    "prior_contact_required",
    "payment_commitment_required",
    "contact",
    "invoice_recipient",
    "invoice_reference",
    "rule_id",
    "missing",
    "undetermined",
    "reason",
)
FLAGS = ("prior_contact_required", "payment_commitment_required")


def _missing_column(flags: dict[str, pl.Expr]) -> pl.Expr:
    """Flags per field → 'a,b,c' in the order of the case form (same order as the single path)."""
    ordered = [f for f in case_fields() if f in flags]
    if not ordered:
        return pl.lit(None, dtype=pl.String)
    parts = [pl.when(flags[f]).then(pl.lit(f)) for f in ordered]
    joined = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined)


def _or(exprs: Sequence[pl.Expr]) -> pl.Expr:
    out = pl.lit(False)
    for e in exprs:
        out = out | e
    return out


def _in_force(pack: Pack) -> pl.Expr:
    expr = pl.lit(True)
    if pack.meta.valid_from:
        expr = expr & (pl.col("date") >= pack.meta.valid_from)
    if pack.meta.valid_to:
        expr = expr & (pl.col("date") <= pack.meta.valid_to)
    return expr


def _select_packs(engine: Engine, frame: pl.LazyFrame) -> pl.LazyFrame:
    """Which pack decides each row, mirroring ``Engine.decide_flat``."""
    packs = engine.packs
    frame = frame.with_columns(all_of_expr(list(p.scope)).alias(f"_scope{i}") for i, p in enumerate(packs))
    frame = frame.with_columns(_in_force(p).alias(f"_force{i}") for i, p in enumerate(packs))
    scope = [pl.col(f"_scope{i}") for i in range(len(packs))]
    force = [pl.col(f"_force{i}") for i in range(len(packs))]
    unknown = [f & s.is_null() for f, s in zip(force, scope, strict=True)]
    applicable = [f & s.fill_null(False) for f, s in zip(force, scope, strict=True)]
    lapsed = [s.fill_null(False) & ~f for f, s in zip(force, scope, strict=True)]
    # over[i]: the packs that take precedence over pack i.
    over = [[j for j, q in enumerate(packs) if engine.overrides(q, p)] for p in packs]
    top = [a & ~_or([applicable[j] for j in over[i]]) for i, a in enumerate(applicable)]
    count = pl.sum_horizontal([t.cast(pl.Int8) for t in top]) if packs else pl.lit(0)
    pick: Any = pl
    for i, t in enumerate(top):
        pick = pick.when(t).then(i)
    threatened = _or([t & _or([unknown[j] for j in over[i]]) for i, t in enumerate(top)])
    chosen = (
        pl.when(count > 1)
        .then(CONFLICT)
        .when(count == 1)
        .then(pl.when(threatened).then(SCOPE_INCOMPLETE).otherwise(pick.otherwise(NO_PACK)))
        .when(_or(unknown))
        .then(SCOPE_INCOMPLETE)
        .otherwise(NO_PACK)
        .cast(pl.Int16)
    )
    # A pack with an unknown scope matters when nothing applies, or when it could win.
    matters = [
        u & ((count == 0) | _or([top[i] for i, p in enumerate(packs) if j in over[i]]))
        for j, u in enumerate(unknown)
    ]
    scope_flags: dict[str, list[pl.Expr]] = {}
    for p, m in zip(packs, matters, strict=True):
        for c in p.scope:
            scope_flags.setdefault(c.field, []).append(m & pl.col(c.field).is_null())

    def ids(mask: list[pl.Expr]) -> pl.Expr:
        parts = [pl.when(m).then(pl.lit(p.id)) for p, m in zip(packs, mask, strict=True)]
        return pl.concat_str(parts, separator=",", ignore_nulls=True)

    return frame.with_columns(
        chosen.alias("_pack"),
        _missing_column({f: _or(v) for f, v in scope_flags.items()}).alias("_scope_missing"),
        ids(applicable).alias("_applicable"),
        ids(top).alias("_top"),
        ids(lapsed).alias("_lapsed"),
    ).drop([f"_{name}{i}" for name in ("scope", "force") for i in range(len(packs))])


def _alive_columns(pack: Pack) -> list[pl.Expr]:
    """Per rule: can it still fire — none of its tests known to fail (Kleene null = maybe), and
    no earlier rule in its table sure to fire?"""
    out = []
    i = 0
    for table in pack.tables:
        settled = pl.lit(False)
        for rule in table.rules:
            truth = all_of_expr(list(rule.conditions))
            out.append((~settled & truth.fill_null(True)).alias(f"_a{i}"))
            settled = settled | truth.fill_null(False)
            i += 1
    return out


def _packed(bits: Sequence[pl.Expr], prefix: str) -> list[pl.Expr]:
    """Boolean columns packed into UInt64 words, 64 to a word."""
    words = []
    for start in range(0, len(bits), BITS):
        parts = [b.cast(pl.UInt64) * (1 << j) for j, b in enumerate(bits[start : start + BITS])]
        words.append(pl.sum_horizontal(parts).cast(pl.UInt64).alias(f"{prefix}{start // BITS}"))
    return words or [pl.lit(0, dtype=pl.UInt64).alias(f"{prefix}0")]


@lru_cache(maxsize=65_536)
def _unpacked(words: tuple[int, ...], n: int) -> tuple[bool, ...]:
    return tuple(bool((words[i // BITS] >> (i % BITS)) & 1) for i in range(n))


@lru_cache(maxsize=65_536)
def _chosen(fields: tuple[str, ...], word: int) -> tuple[str, ...]:
    return tuple(f for i, f in enumerate(fields) if (word >> i) & 1)


def template_fields(pack: Pack) -> list[str]:
    return list(dict.fromkeys(f for r in pack.rules() for f in r.template_fields))


@dataclass(frozen=True)
class Realised:
    """A shared Decision with placeholders, and the values that go into them."""

    decision: Decision
    values: dict[str, Any]


def _pack_decisions(
    engine: Engine, pack: Pack, rows: pl.LazyFrame, schema: pl.Schema
) -> tuple[pl.DataFrame, list[Realised]]:
    """Mirror of ``worlds.summarise`` and ``engine.template_values`` in columns; then one
    ``conclude`` per distinct summary."""
    rules = list(pack.rules())
    fields = pack_fields(pack)
    alive = [pl.col(f"_a{i}") for i in range(len(rules))]
    readers = {
        f: [alive[i] for i, r in enumerate(rules) if any(c.field == f for c in r.conditions)] for f in fields
    }
    unknown = [pl.col(f).is_null() & _or(readers[f]) for f in fields]
    templates = template_fields(pack)
    shown = [
        pl.when(_or([alive[i] for i, r in enumerate(rules) if name in r.template_fields]))
        .then(pl.col(name))
        .otherwise(pl.lit(None, dtype=schema[name]))
        .alias(name)
        for name in templates
    ]
    alive_words = _packed(alive, "_alive")
    unknown_words = _packed(unknown, "_unknown")
    key_cols = [
        "_applicable",
        "kind",
        *[w.meta.output_name() for w in alive_words + unknown_words],
        *templates,
    ]
    keyed = rows.with_columns(_alive_columns(pack)).select(
        "_row", "_applicable", "kind", *alive_words, *unknown_words, *shown
    )
    groups = keyed.group_by(key_cols).agg("_row").collect()
    n_alive = len(alive_words)
    answers = []
    for row in groups.select(key_cols).iter_rows():
        applicable, kind = row[0], row[1]
        can_fire = _unpacked(row[2 : 2 + n_alive], len(rules))
        open_fields = _chosen(fields, row[2 + n_alive])
        values = dict(zip(templates, row[3 + n_alive :], strict=True))
        known = frozenset(k for k, v in values.items() if v is not None)
        others = [engine.pack(i) for i in applicable.split(",") if i != pack.id]
        note = precedence_note(pack, others)
        answers.append(Realised(conclude(pack, can_fire, open_fields, kind, known, note), values))
    return groups.select("_row"), answers


def _other_decision(engine: Engine, key: dict[str, Any]) -> Decision:
    if key["_pack"] == SCOPE_INCOMPLETE:
        return outputs.incomplete(None, key["_scope_missing"].split(","))
    if key["_pack"] == CONFLICT:
        return outputs.conflict(key["_top"].split(","))
    if key["_lapsed"]:
        return outputs.out_of_force([engine.pack(i) for i in key["_lapsed"].split(",")])
    return outputs.no_pack(key["_k_kind"], key["_k_care"], key["_k_home"])


def decide_frame(engine: Engine, frame: pl.DataFrame, *, with_json: bool = False) -> pl.DataFrame:
    """Decide every row of a prepared case frame (see ``batch_io.prepare``).

    Returns one row per case with the summary columns, and the full Decision as JSON when asked.
    The cyclic garbage collector is paused meanwhile: the run makes many small objects that all
    live to its end, and full collections over them cost more than the reasoning itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _decide_frame(engine, frame, with_json)
    finally:
        if was_enabled:
            gc.enable()


def _decide_frame(engine: Engine, frame: pl.DataFrame, with_json: bool) -> pl.DataFrame:
    schema = frame.schema
    lazy = _select_packs(engine, frame.lazy().with_row_index("_row"))
    # Values that only matter for the reason are nulled where they do not.
    no_pack = (pl.col("_pack") == NO_PACK) & (pl.col("_lapsed") == "")
    scope_incomplete = pl.col("_pack") == SCOPE_INCOMPLETE
    conflict = pl.col("_pack") == CONFLICT
    lazy = lazy.with_columns(
        pl.when(no_pack).then(pl.col("kind")).alias("_k_kind"),
        pl.when(no_pack).then(pl.col("care.region")).alias("_k_care"),
        pl.when(no_pack).then(pl.col("patient.home_region")).alias("_k_home"),
        pl.when(scope_incomplete).then(pl.col("_scope_missing")).alias("_scope_missing"),
        pl.when(conflict).then(pl.col("_top")).alias("_top"),
        pl.when(pl.col("_pack") == NO_PACK).then(pl.col("_lapsed")).alias("_lapsed"),
    )
    lazy = lazy.collect().lazy()  # evaluated once, then shared by the per-pack branches
    row_parts: list[pl.DataFrame] = []
    decisions: list[Realised] = []
    for index, pack in enumerate(engine.packs):
        rows, built = _pack_decisions(engine, pack, lazy.filter(pl.col("_pack") == index), schema)
        row_parts.append(rows)
        decisions += built
    other_cols = ["_pack", "_scope_missing", "_top", "_lapsed", "_k_kind", "_k_care", "_k_home"]
    others = lazy.filter(pl.col("_pack") < 0).group_by(other_cols).agg("_row").collect()
    row_parts.append(others.select("_row"))
    decisions += [
        Realised(_other_decision(engine, dict(zip(other_cols, r, strict=True))), {})
        for r in others.select(other_cols).iter_rows()
    ]

    # Summaries and JSON are made once per shared Decision; only the values differ per key.
    shared: dict[int, tuple[dict[str, Any], list[str], str]] = {}
    rows_out: list[dict[str, Any]] = []
    json_out: list[str] = []
    for r in decisions:
        entry = shared.get(id(r.decision))
        if entry is None:
            flat_summary = summary(r.decision)
            holes = [k for k, v in flat_summary.items() if isinstance(v, str) and "⟦" in v]
            entry = (flat_summary, holes, r.decision.model_dump_json() if with_json else "")
            shared[id(r.decision)] = entry
        flat_summary, holes, text = entry
        if holes:
            flat_summary = dict(flat_summary)
            for k in holes:
                flat_summary[k] = outputs.substitute(flat_summary[k], r.values)
        rows_out.append(flat_summary)
        if with_json:
            json_out.append(outputs.substitute(text, r.values) if r.values else text)
    columns = [
        pl.Series(col, [s[col] for s in rows_out], dtype=pl.Boolean if col in FLAGS else pl.String)
        for col in SUMMARY_COLUMNS
    ]
    if with_json:
        columns.append(pl.Series("decision", json_out, dtype=pl.String))
    # Each row takes its group's answer: scatter group numbers into row order, then gather.
    flat = pl.concat(row_parts, how="vertical").with_row_index("_g").explode("_row")
    group_of_row = np.empty(frame.height, dtype=np.int64)
    group_of_row[flat.get_column("_row").to_numpy()] = flat.get_column("_g").to_numpy()
    return pl.DataFrame(columns)[group_of_row]


def _shares_text(decision: Decision) -> str | None:
    if not decision.shares:
        return None
    return ";".join(
        f"{s.payer or '?'}" + (f" (högst {s.max_days} dagar)" if s.max_days is not None else "")
        for s in decision.shares
    )


def summary(decision: Decision) -> dict[str, Any]:
    """The flat columns written to CSV/Parquet: enough to sort, filter and bill on."""
    recipient = decision.invoice.recipient if decision.invoice else None
    return {
        "status": decision.status,
        "decider": decision.decider,
        "payer": decision.payer,
        "shares": _shares_text(decision),
        "invoicer": decision.invoicer,
        "prior_contact_required": decision.prior_contact_required,
        "payment_commitment_required": decision.payment_commitment_required,
        "contact": decision.contact.name if decision.contact else None,
        "invoice_recipient": recipient.name if recipient else None,
        "invoice_reference": recipient.reference if recipient else None,
        "rule_id": decision.rule_id,
        "missing": ",".join(decision.missing) or None,
        "undetermined": ",".join(decision.undetermined) or None,
        "reason": decision.reason,
    }
