"""Cells for CSV files that open in Swedish Excel: the same rules for every export."""

from __future__ import annotations

from decimal import Decimal

#: A leading one of these makes a spreadsheet run the cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """Text shown as text: a leading =, +, -, @, tab or CR gets an apostrophe before it."""
    return "'" + value if value[:1] in _FORMULA_START else value


def cell(value: object) -> object:
    """``text_cell`` for text; numbers, dates and None pass as they are."""
    return text_cell(value) if isinstance(value, str) else value


def number_cell(value: Decimal | None, places: int | None = 2) -> str:
    """Swedish Excel reads ``1840,50``; no thousands separator, which it could misread.
    ``places=None`` keeps the value's own decimals (a quantity)."""
    if value is None:
        return ""
    text = f"{value:.{places}f}" if places is not None else f"{value.normalize():f}"
    return text.replace(".", ",")
