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
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


@dataclass
class Settings:
    database_url: str = field(default_factory=database_url)
    var_dir: Path = field(default_factory=lambda: Path(os.environ.get("VEMBETALAR_VAR", "var")))
    secret_key: str = ""
    cookie_secure: bool = field(
        default_factory=lambda: os.environ.get("VEMBETALAR_COOKIE_SECURE", "1") != "0"
    )
    session_hours: int = 8
    login_attempts: int = 5
    login_window_s: int = 300
    pack_dirs: list[Path] = field(default_factory=list)
    #: How long a looked-up identity is reused; 0 = check the database on every request.
    principal_ttl_s: float = field(
        default_factory=lambda: float(os.environ.get("VEMBETALAR_PRINCIPAL_TTL", "0"))
    )

    #: Where "today" comes from ($VEMBETALAR_TODAY pins it).
    clock: Clock = field(default_factory=Clock.from_env)

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = _secret(self.var_dir)
