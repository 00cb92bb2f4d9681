"""``vembetalar users …``: what an operator does to an account from the server's shell.

A new password is read from a prompt (or, when stdin is not a terminal, its first line), never
from the command line, where it would stay in the shell history and in ``ps`` for everyone to
see. Changing a password or deactivating a user ends all of that user's browser sessions at once.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from vembetalar.cli_common import failure, out
from vembetalar.store import accounts
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.models import User

users_app = typer.Typer(
    help="Användare: byt lösenord, inaktivera, lista och återkalla API-token.", no_args_is_help=True
)
MIN_PASSWORD = 12


def _fail(message: str, code: int = 2) -> NoReturn:
    raise failure(message, code)


def _db() -> Session:
    """The database of $VEMBETALAR_DATABASE_URL (or ./var), brought up to date like ``serve`` does."""
    engine = make_engine()
    migrate(engine)
    return session_factory(engine)()


def _user(db: Session, username: str) -> User:
    user = accounts.user_by_name(db, username)
    if user is None:
        _fail(f"ingen användare {username!r}")
    return user


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt(
            "Nytt lösenord", hide_input=True, confirmation_prompt="Upprepa lösenordet"
        )
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        _fail(f"lösenordet ska ha minst {MIN_PASSWORD} tecken")
    return password


@users_app.command("set-password")
def set_password(username: str) -> None:
    """Byt lösenord (från prompt eller stdin, aldrig kommandoraden); avslutar användarens sessioner."""
    password = _read_password()
    with _db() as db:
        ended = accounts.set_password(db, _user(db, username), password)
        db.commit()
    out.print(f"Lösenordet för {username} är bytt; {ended} inloggade sessioner avslutades.")


@users_app.command("deactivate")
def deactivate(username: str) -> None:
    """Inaktivera en användare: inloggningen och alla API-token slutar fungera direkt."""
    with _db() as db:
        ended = accounts.deactivate(db, _user(db, username))
        db.commit()
    out.print(f"{username} är inaktiverad; {ended} inloggade sessioner avslutades.")


@users_app.command("tokens")
def tokens(username: str) -> None:
    """Lista en användares API-token (token själva går inte att visa, bara återkalla)."""
    with _db() as db:
        rows = accounts.list_tokens(db, _user(db, username).id)
        table = Table("id", "etikett", "skapad", "går ut", "status")
        for row in rows:
            usable = accounts.token_usable(row.expires_at, row.created_at, row.revoked_at)
            status = "återkallad" if row.revoked_at else ("giltig" if usable else "utgången")
            table.add_row(
                str(row.id),
                row.label,
                f"{accounts.aware(row.created_at):%Y-%m-%d %H:%M}",
                f"{accounts.token_expiry(row):%Y-%m-%d %H:%M}",
                status,
            )
    out.print(table)


@users_app.command("revoke-token")
def revoke_token(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Återkalla en API-token (id från 'vembetalar users tokens')."""
    with _db() as db:
        row = accounts.revoke_token(db, token_id)
        if row is None:
            _fail(f"ingen token med id {token_id}")
        db.commit()
    out.print(f"Token {token_id} är återkallad.")
