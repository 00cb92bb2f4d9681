"""Conditions over case fields, in three-valued logic: true, false, or unknown (``None``).

A condition on a field that is not known is itself unknown; the engine turns that into
``incomplete`` instead of guessing. The same condition compiles to a Polars expression, where
null plays the part of unknown under Kleene logic, so the batch path and the single-case path
cannot disagree on what a rule means.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from vembetalar.model.case import LABELS, FieldSpec

Op = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "known"]
NUMERIC_OPS: frozenset[str] = frozenset({"lt", "le", "gt", "ge"})
ALL_OPS: frozenset[str] = frozenset({"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "known"})

_SYMBOL = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


class ConditionError(ValueError):
    """A condition in a pack is malformed; the loader adds file and rule to the message."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Condition:
    field: str
    op: Op
    value: Any  # a scalar, or a tuple for in / not_in
    set_name: str | None = None  # the pack's named value set this came from, for explanations
    param: str | None = None  # the pack's named parameter the value came from

    @property
    def key(self) -> tuple[str, str, Any]:
        """What the condition tests, without the names it was written with."""
        return (self.field, self.op, self.value)

    def test(self, actual: Any) -> bool | None:
        """True, false, or None when the field is unknown."""
        if actual is None:
            return None
        v = self.value
        if self.op == "known":
            return True
        if self.op == "eq":
            return bool(actual == v)
        if self.op == "ne":
            return bool(actual != v)
        if self.op == "in":
            return actual in v
        if self.op == "not_in":
            return actual not in v
        if self.op == "lt":
            return bool(actual < v)
        if self.op == "le":
            return bool(actual <= v)
        if self.op == "gt":
            return bool(actual > v)
        return bool(actual >= v)

    def expr(self) -> pl.Expr:
        """The same test as a Polars expression; null in, null out.

        An amount is a float column in the batch (rounded to öre, see ``batch_io``) and its
        threshold the float nearest the Decimal: both sides are the floats nearest decimals of
        at most 15 digits, so they compare as the Decimals do in the single-case path."""
        col = pl.col(self.field)
        v = _column_value(self.value)
        if self.op == "known":
            return pl.when(col.is_not_null()).then(pl.lit(True))
        if self.op == "in":
            return col.is_in([_column_value(x) for x in v])
        if self.op == "not_in":
            return ~col.is_in([_column_value(x) for x in v])
        compare: dict[str, pl.Expr] = {
            "eq": col == v,
            "ne": col != v,
            "lt": col < v,
            "le": col <= v,
            "gt": col > v,
            "ge": col >= v,
        }
        return compare[self.op]

    def describe(self) -> str:
        """In a form a clerk can read beside the agreement: ``vårdregion (care.region) = 14``."""
        name = f"{LABELS[self.field]} ({self.field})" if self.field in LABELS else self.field
        if self.op == "known":
            return f"{name} är känt"
        if self.op in ("in", "not_in"):
            word = "är en av" if self.op == "in" else "är inte en av"
            shown = f"«{self.set_name}»" if self.set_name else ", ".join(_show(x) for x in self.value)
            return f"{name} {word} {shown}"
        shown = _show(self.value) + (f" ({self.param})" if self.param else "")
        return f"{name} {_SYMBOL[self.op]} {shown}"


def _column_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def show_number(value: Any) -> str:
    """A number as texts print it, alike for a Decimal amount and the batch's float:
    10000, 12000.5 — never 10000.00 or 1.2E+4."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return f"{value.normalize():f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "ja" if value else "nej"
    return show_number(value)


def normalise_value(spec: FieldSpec, raw: Any) -> Any:
    """Bring a value written in YAML to the type of the case field, or say why it cannot be."""
    if spec.type == "category":
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise ConditionError(spec.name, f"{raw!r} ska vara en kod/ett värde i text")
        value = str(raw)
        if isinstance(raw, int) and spec.values:
            width = len(spec.values[0])
            value = value.zfill(width)
        if value not in spec.values:
            raise ConditionError(spec.name, f"{raw!r} är inte ett tillåtet värde")
        return value
    if spec.type == "bool":
        if not isinstance(raw, bool):
            raise ConditionError(spec.name, f"{raw!r} ska vara true eller false")
        return raw
    if spec.type in ("number", "integer"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConditionError(spec.name, f"{raw!r} ska vara ett tal")
        if spec.money is not None:
            # An amount is compared as a Decimal: a float threshold of 0.1 would miss 0.10 kr.
            if not math.isfinite(raw):
                raise ConditionError(spec.name, f"{raw!r} ska vara ett ändligt tal")
            exact = Decimal(raw) if isinstance(raw, int) else Decimal(repr(raw))
            exponent = exact.normalize().as_tuple().exponent
            if isinstance(exponent, int) and -exponent > spec.money.places:
                raise ConditionError(spec.name, f"{raw!r} {spec.money.too_many_decimals}")
            return exact
        return float(raw) if spec.type == "number" else raw
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise ConditionError(spec.name, f"{raw!r} ska vara ett datum") from None


def _is_param_ref(raw: Any) -> bool:
    return isinstance(raw, dict) and list(raw) == ["param"]


def parse_conditions(
    when: dict[str, Any],
    fields: dict[str, FieldSpec],
    sets: dict[str, list[str]],
    params: dict[str, int | float] | None = None,
) -> list[Condition]:
    """Parse a rule's ``when:`` mapping.

    A scalar means equality, a list means "one of", and a mapping names operators
    (``{ge: 10000}``, ``{not_in_set: eu_eea_ch}``); several operators on one field all must hold.
    ``{param: name}`` in place of a value uses the pack's named parameter.
    """
    out: list[Condition] = []
    for field, raw in when.items():
        spec = fields.get(field)
        if spec is None:
            raise ConditionError(field, "okänt ärendefält")
        if isinstance(raw, list):
            out.append(Condition(field, "in", tuple(normalise_value(spec, x) for x in raw)))
        elif isinstance(raw, dict) and not _is_param_ref(raw):
            if not raw:
                raise ConditionError(field, "tomt villkor")
            for op, arg in raw.items():
                out.append(_parse_op(spec, str(op), arg, sets, params or {}))
        else:
            out.append(_parse_op(spec, "eq", raw, sets, params or {}))
    return out


def _parse_op(
    spec: FieldSpec, op: str, arg: Any, sets: dict[str, list[str]], params: dict[str, int | float]
) -> Condition:
    if _is_param_ref(arg):
        name = str(arg["param"])
        if name not in params:
            raise ConditionError(spec.name, f"parametern {name!r} finns inte i paketets parameters")
        if op not in ("eq", "ne", *NUMERIC_OPS):
            raise ConditionError(spec.name, f"operatorn {op!r} tar inte en parameter")
        condition = _parse_op(spec, op, params[name], sets, params)
        return Condition(condition.field, condition.op, condition.value, param=name)
    if op in ("in_set", "not_in_set"):
        if arg not in sets:
            raise ConditionError(spec.name, f"värdemängden {arg!r} finns inte i paketets sets")
        values = tuple(normalise_value(spec, x) for x in sets[arg])
        return Condition(spec.name, "in" if op == "in_set" else "not_in", values, str(arg))
    if op not in ALL_OPS:
        raise ConditionError(spec.name, f"okänd operator {op!r}")
    if op in NUMERIC_OPS and spec.type not in ("number", "integer", "date"):
        raise ConditionError(spec.name, f"operatorn {op!r} kräver ett tal- eller datumfält")
    if op == "known":
        if arg is not True:
            raise ConditionError(spec.name, "known tar bara värdet true")
        return Condition(spec.name, "known", True)
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            raise ConditionError(spec.name, f"{op} kräver en icke-tom lista")
        return Condition(spec.name, op, tuple(normalise_value(spec, x) for x in arg))  # type: ignore[arg-type]
    return Condition(spec.name, op, normalise_value(spec, arg))  # type: ignore[arg-type]


def all_of(conditions: Sequence[Condition], case: dict[str, Any]) -> bool | None:
    """Kleene AND: false beats unknown, unknown beats true."""
    result: bool | None = True
    for cond in conditions:
        value = cond.test(case[cond.field])
        if value is False:
            return False
        if value is None:
            result = None
    return result


def all_of_expr(conditions: list[Condition]) -> pl.Expr:
    expr = pl.lit(True)
    for cond in conditions:
        expr = expr & cond.expr()
    return expr


def unknown_fields(conditions: list[Condition], case: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(c.field for c in conditions if case[c.field] is None))
