"""What an amount of money is, for every door it comes in by: the model, the forms, the API and
the batch.

An amount is a ``Decimal`` with at most two decimals (öre), finite, not negative and no larger
than the database column holds (Numeric(12,2): 9 999 999 999,99 kr). Anything else is refused
with a short Swedish reason (``BadAmount``) that the caller puts after the field's name.

Where the value comes from decides how strict "at most two decimals" is:

* **Text** (a form, the API's string form) is what a person wrote, so it is exact: ``"12,345"``
  is refused, never silently changed. A form's text is read as Swedes type it (``"swedish"``):
  ``12 000``, ``12.000`` (a dot only between groups of three digits), ``12 000,50``; ``12.5``
  and ``12,000`` are refused with the Swedish form shown. The API's text is ``12000.50`` (``"plain"``).
* **A number** (a JSON number, a float in Python, a CSV or Parquet cell in the batch) is binary
  floating point: 0.57 often arrives as 0.5700000000000001 from a client that computed it. It is
  rounded to öre, half up, as its shortest decimal form reads (``repr``) — so 12.345 becomes
  12.35 and 9 999.995 becomes 10 000.00. The bound is checked before rounding, so a number above
  the maximum is refused even when it would round down to it (the JSON schema says "maximum").
* **A Decimal** is exact, so it is treated like text.

Integers are compared as integers and floats are never made from them: ``10**400`` is refused as
too large, not turned into an ``OverflowError``.

The batch path rounds whole columns the same way without Python per row (``round_to_places``),
and a test holds it to ``parse_sek`` on awkward floats.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

#: The largest amount the database keeps (Numeric(12,2)).
MAX_SEK = Decimal("9999999999.99")
#: The largest quantity the database keeps (Numeric(12,3)).
MAX_QUANTITY = Decimal("999999999.999")

NOT_FINITE = "ska vara ett ändligt tal"
NEGATIVE = "får inte vara negativt"
NOT_A_NUMBER = "ska vara ett tal"
_PLACES_WORDS = {
    0: "inga decimaler",
    1: "högst en decimal",
    2: "högst två decimaler",
    3: "högst tre decimaler",
}

TextRule = Literal["swedish", "plain"] | None


class BadAmount(ValueError):
    """The value is not an amount (or quantity); the message is the reason, without the field."""


@dataclass(frozen=True)
class Bounded:
    """A non-negative decimal with ``places`` decimals and an upper bound; the case's field
    catalogue carries it for amounts (``FieldSpec.money``), so the batch checks the same bounds."""

    places: int
    maximum: Decimal
    unit: str = ""
    #: Shown to a person who typed something that is not a number at all.
    example: str = "1 234,50"

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.places)

    @property
    def places_words(self) -> str:
        return _PLACES_WORDS.get(self.places, f"högst {self.places} decimaler")

    @property
    def too_many_decimals(self) -> str:
        return f"får ha {self.places_words}"

    @property
    def too_large(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"är för stort (högst {swedish(self.maximum)}{unit})"

    @property
    def pattern(self) -> str:
        """The API's text form, as its JSON schema states it."""
        digits = len(str(int(self.maximum)))
        return rf"^[0-9]{{1,{digits}}}(\.[0-9]{{1,{self.places}}})?$"


SEK = Bounded(2, MAX_SEK, "kr", "12 000,50")
QUANTITY = Bounded(3, MAX_QUANTITY, "", "2,5")


def swedish(value: Decimal) -> str:
    """``9999999999.99`` → ``9 999 999 999,99``: how the limit reads to a Swedish user."""
    whole, _, fraction = f"{value:f}".partition(".")
    groups = f"{int(whole):,}".replace(",", " ")
    return f"{groups},{fraction}" if fraction else groups


NBSP = "\u00a0"


def format_sek(value: Decimal) -> str:
    """An amount as every page shows it: ``85 000,00 kr`` (no-break spaces, so it never wraps)."""
    return f"{_format(value, 2)}{NBSP}kr"


def echo_sek(value: Decimal) -> str:
    """The amount a form understood, said back: ``12 000 kr``, ``12 000,50 kr``."""
    return f"{_format(value, 0 if value == value.to_integral_value() else 2)}{NBSP}kr"


def format_quantity(value: Decimal) -> str:
    """A quantity as Swedes write it: ``2,5``, ``1 000`` (no trailing zeros, never ``1E+3``)."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.lstrip("-").partition(".")
    groups = f"{int(whole):,}".replace(",", NBSP)
    return ("\u2212" if value < 0 else "") + (f"{groups},{fraction}" if fraction else groups)


def format_amount(value: Decimal) -> str:
    """An amount as a form field holds it: ``1 840,50`` (read back by ``parse_sek``)."""
    return _format(value, 2)


def _format(value: Decimal, places: int) -> str:
    sign = "\u2212" if value < 0 else ""
    whole, _, fraction = f"{abs(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}".partition(".")
    groups = f"{int(whole):,}".replace(",", NBSP)
    return f"{sign}{groups},{fraction}" if fraction else f"{sign}{groups}"


# Digits are ASCII only: Python's \d and Decimal() would also take e.g. Arabic-Indic digits.
_SPACES = " \u00a0\u202f"
#: How Swedes type an amount: ``12000``, ``12 000`` (space, no-break space or narrow no-break space
#: between thousands), ``12.000`` (a dot between groups of exactly three digits), then decimals
#: after a comma: ``12 000,50``, ``12000,5``.
_SWEDISH = re.compile(
    r"(?P<sign>[-\u2212])?"  # a minus, to say "negative" rather than "not a number"
    r"(?P<whole>[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)"
    r"(?:,(?P<fraction>[0-9]+))?"
)
#: A dot used as the decimal sign (``12.5``, ``12 000.50``): refused, with the Swedish form shown.
_DOT_DECIMALS = re.compile(
    r"[-\u2212]?(?P<whole>[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]+)\.(?P<fraction>[0-9]+)"
)
_PLAIN = re.compile(r"(?P<sign>-)?(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def _grouped(digits: str) -> str:
    """``"12000"`` → ``"12 000"`` (plain spaces: what the user is shown to type)."""
    return f"{int(digits):,}".replace(",", " ")


def _swedish_refusal(text: str, bounds: Bounded) -> BadAmount:
    """Why typed text is not an amount, showing how to write it the Swedish way."""
    unit = f" {bounds.unit}" if bounds.unit else ""
    dot = _DOT_DECIMALS.fullmatch(text)
    if dot is not None:
        whole, fraction = re.sub(f"[{_SPACES}]", "", dot["whole"]), dot["fraction"]
        if len(fraction) > bounds.places:
            return BadAmount(
                f"har punkt som decimaltecken: skriv decimaler efter komma, {bounds.places_words}"
                f" (t.ex. {bounds.example}{unit})"
            )
        return BadAmount(f"har punkt som decimaltecken: skriv {_grouped(whole)},{fraction}{unit}")
    return BadAmount(f"är inte ett tal (skriv t.ex. {bounds.example}{unit})")


def _checked(number: Decimal, bounds: Bounded, *, exact: bool) -> Decimal:
    """Sign, bound and decimals of a finite Decimal; ``exact`` refuses extra decimals, otherwise
    they are rounded half up. The bound comes first, so that quantize never sees a huge number."""
    if number < 0:
        raise BadAmount(NEGATIVE)
    if number > bounds.maximum:
        raise BadAmount(bounds.too_large)
    with localcontext() as context:
        context.prec = len(str(int(bounds.maximum))) + bounds.places + 2
        rounded = number.quantize(bounds.quantum, ROUND_HALF_UP)
    if exact and rounded != number:
        raise BadAmount(bounds.too_many_decimals)
    return rounded + 0  # -0.00 → 0.00


def _text(value: str, bounds: Bounded, rule: Literal["swedish", "plain"]) -> Decimal:
    text = value.strip() if rule == "swedish" else value
    match = (_SWEDISH if rule == "swedish" else _PLAIN).fullmatch(text)
    if match is None:
        if rule == "swedish":
            raise _swedish_refusal(text, bounds)
        raise BadAmount(f"{NOT_A_NUMBER} eller en text som 1234.5 ({bounds.places_words})")
    whole = re.sub(f"[{_SPACES}.]", "", match["whole"]) if rule == "swedish" else match["whole"]
    fraction = match["fraction"] or ""
    number = Decimal(f"{'-' if match['sign'] else ''}{whole}.{fraction or '0'}")
    if number < 0:
        raise BadAmount(NEGATIVE)
    if rule == "swedish" and len(fraction) == 3 and bounds.places < 3 and whole == match["whole"]:
        # "12,000": a comma before three digits is a thousands sign in English; never guess.
        unit = f" {bounds.unit}" if bounds.unit else ""
        thousands = f"{_grouped(whole + fraction)}{unit}"
        decimals = f" eller {whole},{fraction[:2]}{unit}" if fraction.endswith("0") else ""
        raise BadAmount(
            f"är tvetydigt: skriv {thousands} för tusental{decimals} ({bounds.places_words} efter kommat)"
        )
    if len(fraction) > bounds.places:
        unit = f" {bounds.unit}" if bounds.unit else ""
        raise BadAmount(f"{bounds.too_many_decimals} (skriv t.ex. {bounds.example}{unit})")
    checked = _checked(number, bounds, exact=True)
    if rule == "plain" and not re.fullmatch(bounds.pattern, value):
        # Within bounds but not as the schema writes it (e.g. leading zeros): the schema decides.
        raise BadAmount(f"{NOT_A_NUMBER} eller en text som 1234.5 ({bounds.places_words})")
    return checked


def to_decimal(value: Any, bounds: Bounded, *, text: TextRule) -> Decimal:
    """``value`` as a Decimal within ``bounds``, or BadAmount. ``text`` says whether strings are
    taken: ``"swedish"`` as typed in a form (``12 000,50``), ``"plain"`` as the API's schema
    writes them (``12000.50``), ``None`` not at all."""
    if isinstance(value, bool):
        raise BadAmount(NOT_A_NUMBER)
    if isinstance(value, int):
        if value < 0:
            raise BadAmount(NEGATIVE)
        if value > bounds.maximum:  # an exact comparison; never float(value) or repr(value)
            raise BadAmount(bounds.too_large)
        return Decimal(value).quantize(bounds.quantum)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadAmount(NOT_FINITE)
        return _checked(Decimal(repr(value)), bounds, exact=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise BadAmount(NOT_FINITE)
        return _checked(value, bounds, exact=True)
    if isinstance(value, str) and text is not None:
        return _text(value, bounds, text)
    raise BadAmount(NOT_A_NUMBER)


def parse_sek(value: Any) -> Decimal:
    """An amount in kronor from a number or from text a Swedish user typed (``12 000,50``,
    ``12.000``, ``12000,5``), or BadAmount with the reason in Swedish: ``12.5`` (a dot as the
    decimal sign) and ``12,000`` (a comma before three digits) are refused, never guessed at."""
    return to_decimal(value, SEK, text="swedish")


def _as_json_number(value: Decimal) -> int | float:
    # Whole kronor stay integers, as clients sent them and stored cases hold them; two decimals
    # within Numeric(12,2) always survive the trip through a float exactly.
    return int(value) if value == value.to_integral_value() else float(value)


_JSON_NUMBER = core_schema.union_schema([core_schema.int_schema(), core_schema.float_schema()])


@dataclass(frozen=True)
class BoundedDecimal:
    """Pydantic metadata for a bounded decimal (``Annotated[Decimal, BoundedDecimal(…)]``):
    validated by ``to_decimal``, shown in JSON as a number, and described in the JSON schema as
    exactly what it accepts — so that the API's schema, and what is fuzzed from it, tell the truth."""

    bounds: Bounded
    text: TextRule
    description: str

    def validate(self, value: Any) -> Decimal:
        try:
            return to_decimal(value, self.bounds, text=self.text)
        except BadAmount as exc:
            raise PydanticCustomError("bad_amount", "{reason}", {"reason": str(exc)}) from None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _as_json_number,
                return_schema=_JSON_NUMBER,
                when_used="json",
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        number: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": float(self.bounds.maximum)}
        out: dict[str, Any] = (
            {"anyOf": [number, {"type": "string", "pattern": self.bounds.pattern}]} if self.text else number
        )
        out["description"] = self.description
        return out


#: Kronor in a Case: a JSON number only, as every other number in a case (text is refused).
Sek = Annotated[
    Decimal,
    BoundedDecimal(SEK, None, "Kronor; ett tal, högst 9 999 999 999,99 (avrundas till hela ören)"),
]


# -- the batch path: the same rules on whole columns ----------------------------------------------

_SPLIT = float(2**27 + 1)  # Veltkamp's constant for doubles


def round_to_places(x: npt.NDArray[np.float64], places: int) -> npt.NDArray[np.float64]:
    """Floats → the float nearest to what ``to_decimal`` gives for each, without Python per value.

    Rounding half up *as the shortest decimal form reads* is not what ``round`` does on binary
    floats (1.005 is 1.00499999… in binary; ``repr`` says 1.005, so half up gives 1.01). Two
    cases, both exact for values within the bound (below 2**43):

    * the shortest form has exactly ``places + 1`` decimals ending in 5 — the float is the one
      nearest to such a number: that number is rounded up;
    * otherwise no half-way point lies between the float and its shortest form, so rounding the
      float's exact binary value to nearest gives the same: ``x * 10**places`` is split into an
      exact sum of two floats (Veltkamp/Dekker), so the product's own rounding error cannot move
      the result across a half-way point.

    Most values are already the float nearest to an amount in öre; they are found with three
    cheap operations and kept, and only the others take the exact path.

    NumPy, not Polars expressions: Polars divides by a constant as a multiplication by its
    reciprocal, which is not the correctly rounded quotient this depends on.
    """
    scale = float(10**places)
    with np.errstate(invalid="ignore", over="ignore"):
        out: npt.NDArray[np.float64] = np.round(x * scale) / scale
        off = (out != x) & ~np.isnan(x)
        if off.any():
            out[off] = _round_exactly(x[off], places)
        return out + 0.0  # -0.0 → 0.0


def _round_exactly(x: npt.NDArray[np.float64], places: int) -> npt.NDArray[np.float64]:
    scale = float(10**places)
    with np.errstate(invalid="ignore", over="ignore"):
        # Half-way points: the shortest form is m / 10**(places+1) with m ending in 5.
        m = np.round(x * (scale * 10))
        half_way = (np.fmod(m, 10) == 5) & (m / (scale * 10) == x)
        # Exact product x * scale = hi*scale + lo*scale (each exact), then an error-free sum.
        c = x * _SPLIT
        hi = c - (c - x)
        lo = x - hi
        a, b = hi * scale, lo * scale
        s = a + b
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
        nearest = np.round(s)
        d = s - nearest  # exact, and |d| <= 0.5
        units = nearest + ((d == 0.5) & (err >= 0)) - ((d == -0.5) & (err < 0))
        units = np.where(half_way, (m + 5) / 10, units)
        exact: npt.NDArray[np.float64] = units / scale
    return exact
