"""The two ways supply input goes wrong, each one Swedish line a user can act on."""

from __future__ import annotations


class BadSupplyInput(ValueError):
    """A file, notice or form value that cannot be taken; the message names the line and field."""


class MovementRefused(ValueError):
    """A movement the stock cannot take as asked (too few units left, an expired lot, …)."""
