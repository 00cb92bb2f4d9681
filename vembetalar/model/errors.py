"""Turning pydantic's validation errors into one line a nurse or clerk can act on, in Swedish."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from vembetalar.model.case import Case


class BadCase(ValueError):
    """The case cannot be decided because its input is malformed; the message names the field."""


_MESSAGES = {
    "extra_forbidden": "okänt fält",
    "missing": "saknas men är obligatoriskt",
    "bool_type": "ska vara true eller false",
    "int_type": "ska vara ett heltal",
    "float_type": "ska vara ett tal",
    "string_type": "ska vara en textsträng",
    "date_type": "ska vara ett datum (ÅÅÅÅ-MM-DD)",
    "date_parsing": "är inte ett giltigt datum (ÅÅÅÅ-MM-DD)",
    "date_from_datetime_parsing": "är inte ett giltigt datum (ÅÅÅÅ-MM-DD)",
    "date_from_datetime_inexact": "ska vara ett datum utan klockslag",
    "model_type": "ska vara ett objekt",
    "model_attributes_type": "ska vara ett objekt",
    "dict_type": "ska vara ett objekt",
    "finite_number": "ska vara ett ändligt tal",
}


#: Our own checks, whose messages already quote the value; cross-field ones name their field here.
_OWN = {
    "region_code": None,
    "municipality_code": None,
    "country_code": None,
    "area_kind": "product.area",
    "municipality_region": "patient.home_municipality",
}


#: How much of a bad value a message repeats: enough to recognise it, never a whole upload.
ECHO_CHARS = 40


def quoted(value: str | int | float | bool | Decimal) -> str:
    """A given value as it is shown in a message: as JSON, and short (at most ECHO_CHARS
    characters and "…"). A huge integer is shown by its size (``1e+400``): never through
    ``float()`` or a 4 300-digit ``str()``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"{Decimal(value):.0e}".replace("E", "e")
    if isinstance(value, str) and len(value) > ECHO_CHARS:
        return json.dumps(value[:ECHO_CHARS] + "…", ensure_ascii=False)
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= ECHO_CHARS + 2 else text[:ECHO_CHARS] + "…"


def describe(error: dict[str, Any]) -> str:
    """One error as ``field: what is wrong``."""
    kind = error["type"]
    if kind == "retired_field":
        return str(error["msg"])
    loc = _OWN.get(kind) or ".".join(str(p) for p in error["loc"]) or "ärendet"
    if kind in _OWN:
        msg, value = str(error["msg"]), (error.get("ctx") or {}).get("value")
        if isinstance(value, str) and len(value) > ECHO_CHARS:
            msg = msg.replace(value, value[:ECHO_CHARS] + "…")
        return f"{loc}: {msg}"
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if isinstance(given, float) and not math.isfinite(given):
        return f"{loc}: {quoted(str(given))} ska vara ett ändligt tal"
    if kind == "literal_error":
        msg = f"ska vara en av {ctx.get('expected', '')}"
    elif kind in ("greater_than_equal", "greater_than"):
        msg = f"får inte vara mindre än {ctx.get('ge', ctx.get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        msg = f"får inte vara större än {ctx.get('le', ctx.get('lt'))}"
    else:
        # bad_amount (``money``) brings its own Swedish reason.
        msg = _MESSAGES.get(kind, error["msg"])
    if kind not in ("missing", "extra_forbidden") and "input" in error:
        given = error["input"]
        if isinstance(given, str | int | float | bool | Decimal):
            return f"{loc}: {quoted(given)} {msg}"
    return f"{loc}: {msg}"


def one_line(exc: ValidationError) -> str:
    """All errors of a validation, first one first, on a single line."""
    errors = exc.errors()
    first = describe(dict(errors[0]))
    if len(errors) > 1:
        return f"{first} (och {len(errors) - 1} fel till)"
    return first


def parse_case(raw: str | bytes | dict[str, Any]) -> Case:
    """Validate JSON text or a decoded object into a Case, or raise BadCase naming the field."""
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadCase(f"ogiltig JSON på rad {exc.lineno}, kolumn {exc.colno}: {exc.msg}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise BadCase("ärendet: ska vara ett JSON-objekt")
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise BadCase(one_line(exc)) from None
