"""Web settings from the environment, with defaults that work on a laptop (./var, loopback)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from vembetalar.clock import Clock
from vembetalar.store.db import database_url


def _secret(var_dir: Path) -> str:
    """$VEMBETALAR_SECRET_KEY, else a key kept in var/secret.key (created once, mode 0600)."""
    if key := os.environ.get("VEMBETALAR_SECRET_KEY"):
        return key
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _addresses(raw: str) -> list[str]:
    return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]


@dataclass
class Settings:
    database_url: str = field(default_factory=database_url)
    var_dir: Path = field(default_factory=lambda: Path(os.environ.get("VEMBETALAR_VAR", "var")))
    secret_key: str = ""
    cookie_secure: bool = field(
        default_factory=lambda: os.environ.get("VEMBETALAR_COOKIE_SECURE", "1") != "0"
    )
    session_hours: int = 8
    #: Failed logins per (address, user name) in the window before each further try waits
    #: 1 s, 2 s, 4 s … up to ``login_max_wait_s``.
    login_attempts: int = 5
    login_window_s: int = 900
    login_max_wait_s: int = 300
    #: A looser cap per address alone (many names from one place), in the same window.
    login_address_attempts: int = 50
    #: Password hashes computed at once (argon2 takes ~64 MiB and tens of ms each): the rest wait
    #: their turn in a thread, the event loop never does.
    hash_concurrency: int = 2
    #: How long a new API token lives.
    token_days: int = 90
    #: The largest request body read, in bytes; a larger one is refused with 413.
    max_body_bytes: int = field(
        default_factory=lambda: int(os.environ.get("VEMBETALAR_MAX_BODY_BYTES", str(1024 * 1024)))
    )
    #: Proxies whose X-Forwarded-For is believed; by default none, so a client cannot choose the
    #: address the login throttle counts.
    trusted_proxies: list[str] = field(
        default_factory=lambda: _addresses(os.environ.get("VEMBETALAR_TRUSTED_PROXIES", ""))
    )
    pack_dirs: list[Path] = field(default_factory=list)
    #: How long a looked-up identity is reused; 0 = check the database on every request.
    principal_ttl_s: float = field(
        default_factory=lambda: float(os.environ.get("VEMBETALAR_PRINCIPAL_TTL", "0"))
    )

    #: uvicorn's access log (paths without query strings); off by default.
    access_log: bool = field(default_factory=lambda: os.environ.get("VEMBETALAR_ACCESS_LOG") == "1")

    #: Where "today" comes from ($VEMBETALAR_TODAY pins it).
    clock: Clock = field(default_factory=Clock.from_env)

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = _secret(self.var_dir)
