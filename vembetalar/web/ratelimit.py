"""Failed-login throttling: a few tries per user name and address, then a pause."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginLimiter:
    def __init__(self, attempts: int, window_s: int) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._failures[key]
        while hits and now - hits[0] > self.window_s:
            hits.popleft()
        return hits

    def blocked_for(self, *keys: str) -> int:
        """Seconds until another try is allowed (0 = allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key in keys:
                hits = self._prune(key, now)
                if len(hits) >= self.attempts:
                    waits.append(int(self.window_s - (now - hits[0])) + 1)
            return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._prune(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
