"""Our rule tables compiled to GoRules JDM, so zen-engine runs *the same* tables in the benchmark.

zen-engine has no "unknown" value: a null input simply fails a cell. That is fine for measuring
throughput; agreement with our engine is checked only on rows where every field is known.
"""

from __future__ import annotations

import json
from typing import Any

from vembetalar.rules.conditions import Condition
from vembetalar.rules.pack import Pack


def _literal(value: Any) -> str:
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


def to_jdm(packs: list[Pack]) -> dict[str, Any]:
    """One graph: a scope table choosing the pack, and every pack's tables, in parallel."""
    nodes: list[dict[str, Any]] = [
        {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
        {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 200, "y": 0}},
    ]
    ordered = sorted(packs, key=lambda p: -p.specificity)
    nodes.append(_table_node("scope", "scope", [(p.id, list(p.scope)) for p in ordered], "pack"))
    for p in packs:
        for t in p.tables:
            rows = [(r.id, list(r.conditions)) for r in t.rules]
            nodes.append(_table_node(f"{p.id}.{t.id}", f"{p.id}.{t.id}", rows, f"{p.id}__{t.id}"))
    edges = []
    for n in nodes[2:]:
        edges.append({"id": f"a-{n['id']}", "sourceId": "in", "targetId": n["id"], "type": "edge"})
        edges.append({"id": f"b-{n['id']}", "sourceId": n["id"], "targetId": "out", "type": "edge"})
    return {"nodes": nodes, "edges": edges}
