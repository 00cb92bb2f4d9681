"""Deciding many cases at once, vectorised with Polars.

Each rule's conditions compile to Polars expressions (null = unknown, Kleene logic), so a million
cases cost a few hundred column operations, not a million Python calls. Rows end up with a small
*key* — chosen pack, the rule hit in each table, missing fields, the case values that output
templates use — and each distinct key (a few hundred in practice) is turned into a Decision by
the very same code the single-case engine uses. Batch and single answers are therefore the same
by construction, and a test checks it on random cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from vembetalar.model.case import case_fields
from vembetalar.model.decision import Decision
from vembetalar.rules import outputs
from vembetalar.rules.conditions import all_of_expr
from vembetalar.rules.engine import Engine, conclude, precedence_note
from vembetalar.rules.pack import Pack, Table

INCOMPLETE = -2
NO_HIT = -1
NO_PACK, SCOPE_INCOMPLETE, CONFLICT = -1, -2, -3

SUMMARY_COLUMNS = (
    "status",
    "decider",
    "payer",
    "invoicer",
    "prior_contact_required",
    "payment_commitment_required",
    "contact",
    "invoice_recipient",
    "invoice_reference",
    "rule_id",
    "missing",
    "reason",
)


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


def _table_exprs(table: Table, prefix: str) -> tuple[list[pl.Expr], pl.Expr, dict[str, pl.Expr]]:
    """Truth columns to materialise first, then the hit index per row (or INCOMPLETE / NO_HIT)
    and, per field, 'this field is missing'. Materialising the truths once keeps every later
    expression a cheap column lookup."""
    names = [f"{prefix}_{i}" for i in range(len(table.rules))]
    materialise = [all_of_expr(list(r.conditions)).alias(n) for r, n in zip(table.rules, names, strict=True)]
    truths = [pl.col(n) for n in names]
    flags: dict[str, list[pl.Expr]] = {}
    if table.hit_policy == "first":
        chain: Any = pl
        no_true_before = pl.lit(True)
        for i, t in enumerate(truths):
            chain = chain.when(t.is_null()).then(INCOMPLETE).when(t).then(i)
            for field in dict.fromkeys(c.field for c in table.rules[i].conditions):
                flag = no_true_before & t.is_null() & pl.col(field).is_null()
                flags.setdefault(field, []).append(flag)
            no_true_before = no_true_before & ~t.fill_null(False)
        index = chain.otherwise(NO_HIT)
    else:
        chain = pl
        for i, t in enumerate(truths):
            chain = chain.when(t).then(i)
        none_true = ~_or([t.fill_null(False) for t in truths])
        any_null = _or([t.is_null() for t in truths])
        index = chain.when(any_null).then(INCOMPLETE).otherwise(NO_HIT)
        for i, t in enumerate(truths):
            for field in dict.fromkeys(c.field for c in table.rules[i].conditions):
                flags.setdefault(field, []).append(none_true & t.is_null() & pl.col(field).is_null())
    return materialise, index.cast(pl.Int16), {f: _or(v) for f, v in flags.items()}


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

    chosen: Any = pl.when(_or(unknown)).then(SCOPE_INCOMPLETE)
    for level in sorted({p.specificity for p in packs}, reverse=True):
        members = [i for i, p in enumerate(packs) if p.specificity == level]
        count = pl.sum_horizontal([applicable[i].cast(pl.Int8) for i in members])
        pick: Any = pl
        for i in members:
            pick = pick.when(applicable[i]).then(i)
        chosen = chosen.when(count == 1).then(pick.otherwise(NO_PACK)).when(count > 1).then(CONFLICT)
    chosen = chosen.otherwise(NO_PACK).cast(pl.Int16)

    scope_flags: dict[str, list[pl.Expr]] = {}
    for p, u in zip(packs, unknown, strict=True):
        for c in p.scope:
            scope_flags.setdefault(c.field, []).append(u & pl.col(c.field).is_null())

    def ids(mask: list[pl.Expr]) -> pl.Expr:
        parts = [pl.when(m).then(pl.lit(p.id)) for p, m in zip(packs, mask, strict=True)]
        return pl.concat_str(parts, separator=",", ignore_nulls=True)

    return frame.with_columns(
        chosen.alias("_pack"),
        _missing_column({f: _or(v) for f, v in scope_flags.items()}).alias("_scope_missing"),
        ids(applicable).alias("_applicable"),
        ids(lapsed).alias("_lapsed"),
    )


def _decide_pack_rows(pack: Pack, frame: pl.LazyFrame) -> pl.LazyFrame:
    flags: dict[str, list[pl.Expr]] = {}
    hit_cols = []
    for t_index, table in enumerate(pack.tables):
        truths, index, table_flags = _table_exprs(table, f"_t{t_index}")
        name = f"_hit{t_index}"
        hit_cols.append(name)
        frame = frame.with_columns(truths).with_columns(index.alias(name))
        for f, e in table_flags.items():
            flags.setdefault(f, []).append(e)
    # A template needs its field only when the rule using it fires and every table has a hit.
    all_hit = pl.lit(True)
    for name in hit_cols:
        all_hit = all_hit & (pl.col(name) >= 0)
    for t_index, table in enumerate(pack.tables):
        for r_index, rule in enumerate(table.rules):
            for f in rule.template_fields:
                fires = all_hit & (pl.col(f"_hit{t_index}") == r_index) & pl.col(f).is_null()
                flags.setdefault(f, []).append(fires)
    return frame.with_columns(_missing_column({f: _or(v) for f, v in flags.items()}).alias("_missing"))


def _template_value(pack: Pack, field: str, dtype: pl.DataType) -> pl.Expr:
    """The field's value where a rule that fired uses it in a template, else null — so that
    values no output depends on do not multiply the distinct keys."""
    used = [
        pl.col(f"_hit{t}") == r
        for t, table in enumerate(pack.tables)
        for r, rule in enumerate(table.rules)
        if field in rule.template_fields
    ]
    return pl.when(_or(used)).then(pl.col(field)).otherwise(pl.lit(None, dtype=dtype))


def template_fields(pack: Pack) -> list[str]:
    return list(dict.fromkeys(f for r in pack.rules() for f in r.template_fields))


def decide_frame(engine: Engine, frame: pl.DataFrame, *, with_json: bool = False) -> pl.DataFrame:
    """Decide every row of a prepared case frame (see ``batch_io.prepare``).

    Returns one row per case with the summary columns, and the full Decision as JSON when asked.
    """
    schema = frame.schema
    lazy = frame.lazy().with_row_index("_row")
    for spec in case_fields().values():
        if spec.null_means is not None:
            lazy = lazy.with_columns(pl.col(spec.name).fill_null(spec.null_means))
    lazy = _select_packs(engine, lazy)
    # Key columns for rows no pack decides, with values irrelevant to their reason nulled out.
    no_pack = pl.col("_pack") == NO_PACK
    has_lapsed = pl.col("_lapsed") != ""
    lazy = lazy.with_columns(
        pl.when(no_pack & ~has_lapsed).then(pl.col("kind")).alias("_k_kind"),
        pl.when(no_pack & ~has_lapsed).then(pl.col("care.region")).alias("_k_care"),
        pl.when(no_pack & ~has_lapsed).then(pl.col("patient.home_region")).alias("_k_home"),
    )
    lazy = lazy.collect().lazy()  # evaluated once, then shared by the per-pack branches
    max_tables = max((len(p.tables) for p in engine.packs), default=0)
    hit_cols = [f"_hit{i}" for i in range(max_tables)]
    tmpl_all = list(dict.fromkeys(f for p in engine.packs for f in template_fields(p)))
    # The key: everything a Decision depends on.
    key_cols = [
        "_pack",
        *hit_cols,
        "_missing",
        "_scope_missing",
        "_applicable",
        "_lapsed",
        "_k_kind",
        "_k_care",
        "_k_home",
        *tmpl_all,
    ]
    parts = []
    for index, pack in enumerate(engine.packs):
        rows = _decide_pack_rows(pack, lazy.filter(pl.col("_pack") == index))
        rows = rows.with_columns(
            [_template_value(pack, f, schema[f]).alias(f) for f in tmpl_all]
            + [pl.lit(None, dtype=pl.Int16).alias(c) for c in hit_cols[len(pack.tables) :]]
        )
        parts.append(rows.select(["_row", *key_cols]))
    others = lazy.filter(pl.col("_pack") < 0).with_columns(
        pl.lit(None, dtype=pl.String).alias("_missing"),
        *[pl.lit(None, dtype=schema[f]).alias(f) for f in tmpl_all],
        *[pl.lit(None, dtype=pl.Int16).alias(c) for c in hit_cols],
    )
    parts.append(others.select(["_row", *key_cols]))
    groups = pl.concat(parts, how="vertical_relaxed").group_by(key_cols).agg("_row").collect()
    built = [
        _decision_for_key(engine, dict(zip(key_cols, row, strict=True)), hit_cols, with_json)
        for row in groups.select(key_cols).iter_rows()
    ]
    flags = ("prior_contact_required", "payment_commitment_required")
    columns = [
        pl.Series(col, [b[0][col] for b in built], dtype=pl.Boolean if col in flags else pl.String)
        for col in SUMMARY_COLUMNS
    ]
    if with_json:
        columns.append(pl.Series("decision", [b[1] for b in built], dtype=pl.String))
    table = groups.select("_row").with_columns(columns)
    return table.explode("_row").sort("_row").drop("_row")


def _decision_for_key(
    engine: Engine, key: dict[str, Any], hit_cols: list[str], with_json: bool
) -> tuple[dict[str, Any], str | None]:
    decision = decision_for_key(engine, key, hit_cols)
    return summary(decision), decision.model_dump_json() if with_json else None


def decision_for_key(engine: Engine, key: dict[str, Any], hit_cols: list[str]) -> Decision:
    pack_index = key["_pack"]
    if pack_index == SCOPE_INCOMPLETE:
        return outputs.incomplete(None, key["_scope_missing"].split(","))
    if pack_index == CONFLICT:
        applicable = key["_applicable"].split(",")
        best = max(engine.pack(i).specificity for i in applicable)
        return outputs.conflict([i for i in applicable if engine.pack(i).specificity == best])
    if pack_index == NO_PACK:
        if key["_lapsed"]:
            return outputs.out_of_force([engine.pack(i) for i in key["_lapsed"].split(",")])
        return outputs.no_pack(key["_k_kind"], key["_k_care"], key["_k_home"])
    pack = engine.packs[pack_index]
    others = [engine.pack(i) for i in key["_applicable"].split(",") if i != pack.id]
    note = precedence_note(pack, others)
    hits = []
    for t_index, table in enumerate(pack.tables):
        h = key[hit_cols[t_index]]
        hits.append(table.rules[h] if h is not None and h >= 0 else None)
    missing = key["_missing"].split(",") if key["_missing"] else []
    return conclude(pack, hits, missing, key, note)


def summary(decision: Decision) -> dict[str, Any]:
    """The flat columns written to CSV/Parquet: enough to sort, filter and bill on."""
    recipient = decision.invoice.recipient if decision.invoice else None
    return {
        "status": decision.status,
        "decider": decision.decider,
        "payer": decision.payer,
        "invoicer": decision.invoicer,
        "prior_contact_required": decision.prior_contact_required,
        "payment_commitment_required": decision.payment_commitment_required,
        "contact": decision.contact.name if decision.contact else None,
        "invoice_recipient": recipient.name if recipient else None,
        "invoice_reference": recipient.reference if recipient else None,
        "rule_id": decision.rule_id,
        "missing": ",".join(decision.missing) or None,
        "reason": decision.reason,
    }
