"""Today's date, from one place.

Agreements start and end on dates (the VGR–Halland reading ends 2026-12-31), so nothing may
depend on the machine's calendar by accident. Everything that needs "today" — a new case's
default date, the year in a case number, the day an event is registered — asks a ``Clock``,
which the settings build from ``VEMBETALAR_TODAY`` (an ISO date) when it is set: tests, demos
and a what-if session can then run on a fixed day.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TODAY_ENV = "VEMBETALAR_TODAY"


class BadClock(ValueError):
    """``VEMBETALAR_TODAY`` is set but is not a date."""


@dataclass(frozen=True)
class Clock:
    """``fixed`` pins the date; otherwise it is today's date in Sweden (not in UTC)."""

    fixed: dt.date | None = None

    def today(self) -> dt.date:
        return self.fixed if self.fixed is not None else dt.datetime.now(STOCKHOLM).date()

    @classmethod
    def from_env(cls) -> Clock:
        raw = os.environ.get(TODAY_ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(dt.date.fromisoformat(raw))
        except ValueError:
            raise BadClock(f"{TODAY_ENV}: {raw[:40]!r} är inget datum (ÅÅÅÅ-MM-DD)") from None
