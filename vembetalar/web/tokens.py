"""A user's own API tokens: list them, make a new one (shown once), revoke one.

A token ends at its ``expires_at`` (``days`` from when it was made, at most a year) or when
revoked, whichever comes first; either way the next call with it gets 401. Only the token's
SHA-256 is stored, so a lost token cannot be shown again, only revoked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from vembetalar.security import token_digest
from vembetalar.store import accounts, repo
from vembetalar.store.models import ApiToken
from vembetalar.web.api import ERRORS
from vembetalar.web.auth import DbDep, Principal, api_user
from vembetalar.web.schemas import TokenCreated, TokenIn, TokenOut

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["konto"])
UserDep = Annotated[Principal, Depends(api_user)]


def token_out(row: ApiToken) -> TokenOut:
    expires = accounts.token_expiry(row)
    active = accounts.token_usable(row.expires_at, row.created_at, row.revoked_at)
    return TokenOut(
        id=row.id,
        label=row.label,
        created_at=accounts.aware(row.created_at),
        expires_at=expires,
        revoked_at=accounts.aware(row.revoked_at) if row.revoked_at else None,
        active=active,
    )


@router.get("/tokens", response_model=list[TokenOut], summary="Mina API-token")
def list_tokens(user: UserDep, db: DbDep) -> list[TokenOut]:
    return [token_out(row) for row in accounts.list_tokens(db, user.id)]


@router.post("/tokens", response_model=TokenCreated, status_code=201, summary="Skapa en API-token")
def create_token(body: TokenIn, user: UserDep, db: DbDep) -> TokenCreated:
    new = accounts.create_token(db, user.id, body.label, body.days)
    repo.audit(db, repo.Actor.of(user), "token.created", None, f"token {new.row.id}")
    db.commit()
    return TokenCreated(**token_out(new.row).model_dump(), token=new.token)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    summary="Återkalla en av mina API-token",
    responses={204: {"description": "Återkallad"}},
)
def revoke_token(token_id: int, request: Request, user: UserDep, db: DbDep) -> Response:
    """The token that makes this very call is not revoked by it (a script that loops over its
    own list would cut its own branch): use another token, a browser session or
    ``vembetalar users revoke-token``."""
    header = request.headers.get("authorization", "")
    own = [row for row in accounts.list_tokens(db, user.id) if row.id == token_id]
    if not own:
        raise repo.NotFound("ingen sådan token")
    if header.lower().startswith("bearer ") and own[0].token_hash == token_digest(header[7:].strip()):
        raise repo.StepRefused("token som används i anropet kan inte återkalla sig själv; använd en annan")
    row = accounts.revoke_token(db, token_id, user.id)
    if row is None:
        raise repo.NotFound("ingen sådan token")
    repo.audit(db, repo.Actor.of(user), "token.revoked", None, f"token {token_id}")
    db.commit()
    request.app.state.principals.forget(f"token:{row.token_hash}")
    return Response(status_code=204)
