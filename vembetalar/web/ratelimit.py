"""Failed-login throttling, kept in the database so that every worker process counts the same.

Failures are counted per (address, user name): after ``attempts`` failures in the window each
further try from that address for that name must wait 1 s, 2 s, 4 s … (capped). An attacker who
knows a user name can therefore slow down only their own address, never lock the real user out
from another one. A looser cap per address alone stops one address from walking through many
names. A successful login clears its (address, name) count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from vembetalar.store import accounts
from vembetalar.store.models import utcnow


class LoginThrottle:
    def __init__(
        self,
        attempts: int,
        window_s: int,
        max_wait_s: int,
        address_attempts: int,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.attempts = attempts
        self.window = dt.timedelta(seconds=window_s)
        self.max_wait_s = max_wait_s
        self.address_attempts = address_attempts
        #: The clock; a test may replace it to step through the backoff without sleeping.
        self.now = now

    @staticmethod
    def keys(address: str, username: str) -> tuple[str, str]:
        """(address + name, address): user names are compared as typed, case-insensitively."""
        return f"pair:{address}|{username.lower()[:80]}", f"addr:{address}"

    def _backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures: 0 below the limit, then 1, 2, 4 … capped."""
        if failures < self.attempts:
            return 0.0
        return float(min(2 ** (failures - self.attempts), self.max_wait_s))

    def blocked_for(self, db: Session, address: str, username: str) -> int:
        """Whole seconds until another try is allowed (0 = allowed now)."""
        now = self.now()
        since = now - self.window
        pair, addr = self.keys(address, username)
        waits = [0.0]
        count, last = accounts.count_failures(db, pair, since)
        if last is not None:
            waits.append((last + dt.timedelta(seconds=self._backoff(count)) - now).total_seconds())
        count, last = accounts.count_failures(db, addr, since)
        if count >= self.address_attempts and last is not None:
            waits.append((last + dt.timedelta(seconds=self.max_wait_s) - now).total_seconds())
        wait = max(waits)
        return 0 if wait <= 0 else int(wait) + (0 if wait == int(wait) else 1)

    def failed(self, db: Session, address: str, username: str) -> None:
        now = self.now()
        accounts.add_failures(db, self.keys(address, username), now, prune_before=now - self.window)

    def succeeded(self, db: Session, address: str, username: str) -> None:
        accounts.clear_failures(db, self.keys(address, username)[0])
