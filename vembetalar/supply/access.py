"""Who sees which stock: a municipality's users see its own stocks, a region's users every stock
in the region's municipalities (an SCB municipality code begins with its county's code, so
Halmstad 1380 lies in Region Halland 13)."""

from __future__ import annotations

from vembetalar.store.repo import Actor, NotFound, require


def sees(organisation_id: str, municipality: str) -> bool:
    kind, _, code = organisation_id.partition(":")
    if kind == "kommun":
        return code == municipality
    if kind == "region":
        return len(code) == 2 and municipality.startswith(code)
    return False


def check(actor: Actor, permission: str, municipality: str) -> None:
    """The role's permission, then the stock's municipality; a stock out of scope is "not found"."""
    require(actor, permission)
    if not sees(actor.organisation_id, municipality):
        raise NotFound("förrådet finns inte (eller hör inte till din organisation)")
