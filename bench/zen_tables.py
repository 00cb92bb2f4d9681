"""Our rule tables compiled to GoRules JDM, so zen-engine runs *the same* tables in the benchmark.

One graph per pack (input → the pack's tables side by side → output); each table's output field
``<pack>__<table>`` is the id of the rule that fires. Which pack applies is chosen in Python first
(``choose_pack``), the way a real caller would, so zen evaluates only that pack's tables.

zen-engine has no "unknown" value: a null input simply fails a cell (or passes a ``!=`` cell).
That is fine for measuring throughput; agreement with our engine is checked only where every
field a table reads is known. Our ``unique`` tables are compiled as ``first``: the pack check
proves they never overlap, and our engine takes the first rule that fires either way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import zen

from vembetalar.rules.conditions import Condition
from vembetalar.rules.pack import Pack, Table


def _literal(value: Any) -> str:
    if isinstance(value, dt.date):
        return json.dumps(value.isoformat())  # dates travel as ISO strings, which sort as dates
    if isinstance(value, Decimal):
        return f"{value:f}"  # thresholds on amounts are exact Decimals (model/money.py)
    return json.dumps(value)


def cell(conditions: list[Condition]) -> str:
    """One JDM unary cell for all conditions on a field (joined with 'and')."""
    parts = []
    for c in conditions:
        v = c.value
        if c.op == "eq":
            parts.append(f"$ == {_literal(v)}")
        elif c.op == "ne":
            parts.append(f"$ != {_literal(v)}")
        elif c.op == "in":
            parts.append(f"$ in {_literal(list(v))}")
        elif c.op == "not_in":
            parts.append(f"not($ in {_literal(list(v))})")
        elif c.op == "known":
            parts.append("$ != null")
        else:
            symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[c.op]
            parts.append(f"$ {symbol} {_literal(v)}")
    return " and ".join(parts)


def output_field(pack: Pack, table: Table) -> str:
    """The JDM output that carries the id of the rule firing in ``table`` (absent when none)."""
    return f"{pack.id}__{table.id}"


def _table_node(
    node_id: str, name: str, rows: list[tuple[str, list[Condition]]], out_field: str
) -> dict[str, Any]:
    fields = list(dict.fromkeys(c.field for _, conds in rows for c in conds))
    inputs = [{"id": f"i{i}", "name": f, "field": f} for i, f in enumerate(fields)]
    rules = []
    for index, (label, conds) in enumerate(rows):
        rule: dict[str, Any] = {"_id": f"r{index}", "o0": _literal(label)}
        for i, f in enumerate(fields):
            rule[f"i{i}"] = cell([c for c in conds if c.field == f])
        rules.append(rule)
    return {
        "id": node_id,
        "type": "decisionTableNode",
        "name": name,
        "position": {"x": 100, "y": 0},
        "content": {
            "hitPolicy": "first",
            "inputs": inputs,
            "outputs": [{"id": "o0", "name": out_field, "field": out_field}],
            "rules": rules,
        },
    }


def _graph(tables: list[dict[str, Any]]) -> dict[str, Any]:
    """Input node → every table node in parallel → output node."""
    nodes: list[dict[str, Any]] = [
        {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
        {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 200, "y": 0}},
        *tables,
    ]
    edges = []
    for n in tables:
        edges.append({"id": f"a-{n['id']}", "sourceId": "in", "targetId": n["id"], "type": "edge"})
        edges.append({"id": f"b-{n['id']}", "sourceId": n["id"], "targetId": "out", "type": "edge"})
    return {"nodes": nodes, "edges": edges}


def _pack_tables(pack: Pack) -> list[dict[str, Any]]:
    return [
        _table_node(
            f"{pack.id}.{t.id}",
            f"{pack.id}.{t.id}",
            [(r.id, list(r.conditions)) for r in t.rules],
            output_field(pack, t),
        )
        for t in pack.tables
    ]


def pack_jdm(pack: Pack) -> dict[str, Any]:
    """One pack's tables as a JDM graph, to be evaluated once the pack is known to apply."""
    return _graph(_pack_tables(pack))


def all_packs_jdm(packs: Sequence[Pack]) -> dict[str, Any]:
    """The earlier, slow layout, kept for the record: a scope table naming the pack (validity
    dates left out) and *every* pack's tables, all evaluated for every row."""
    scope = _table_node("scope", "scope", [(p.id, list(p.scope)) for p in packs], "pack")
    return _graph([scope, *(node for p in packs for node in _pack_tables(p))])


def pack_graphs(packs: Sequence[Pack]) -> dict[str, dict[str, Any]]:
    """Pack id → that pack's JDM graph, for a zen-engine loader."""
    return {p.id: pack_jdm(p) for p in packs}


def callback_loader(packs: Sequence[Pack]) -> Callable[[str], Any]:
    """A loader function for ``zen.ZenEngine({"loader": fn})``: key (pack id) → the pack's graph.

    zen-engine 2.1 calls the loader on *every* ``evaluate`` (``get_decision`` hands back a
    ``ZenDecision``, whose ``evaluate`` costs ~200 µs a call). Returned as JDM text or a dict the
    graph is converted again on each call, which cost more than the tables in our probes; so the
    graphs are wrapped once in ``zen.ZenDecisionContent`` and handed out as they are."""
    contents = {key: zen.ZenDecisionContent(json.dumps(graph)) for key, graph in pack_graphs(packs).items()}
    return contents.__getitem__


def static_loader(packs: Sequence[Pack]) -> dict[str, Any]:
    """A loader config for ``zen.ZenEngine({"loader": ...})`` holding every pack's graph."""
    return {"type": "static", "content": pack_graphs(packs)}


def choose_pack(
    packs: Sequence[Pack], overrides: Callable[[Pack, Pack], bool], case: dict[str, Any]
) -> Pack | None:
    """The pack that decides a flat, typed case: in force on its date, scope surely holding, and
    not overridden by another such pack. None when no pack (or more than one) surely applies —
    zen has no "unknown", so a row whose scope is not known is left to our engine."""
    day = case["date"]
    applicable = [p for p in packs if p.in_force(day) and all(c.test(case[c.field]) is True for c in p.scope)]
    if len(applicable) > 1:
        applicable = [p for p in applicable if not any(overrides(q, p) for q in applicable)]
    return applicable[0] if len(applicable) == 1 else None
