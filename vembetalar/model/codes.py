"""Reference codes every agreement relies on: SCB region and municipality codes, ISO countries.

They ship as data files so that a new municipality merger is a data change, not a code change.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import pycountry


def _read_code_table(name: str) -> dict[str, str]:
    text = resources.files("vembetalar.data").joinpath(name).read_text(encoding="utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


@cache
def regions() -> dict[str, str]:
    """SCB län codes (two digits) → the region's name as an organisation."""
    return _read_code_table("regions.csv")


@cache
def municipalities() -> dict[str, str]:
    """SCB kommun codes (four digits) → the municipality's name."""
    return _read_code_table("municipalities.csv")


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def party_name(party: str) -> str:
    """A person-readable name for a party string such as ``region:13`` or ``kommun:1780``."""
    kind, _, code = party.partition(":")
    if kind == "region" and code in regions():
        return regions()[code]
    if kind == "kommun" and code in municipalities():
        return f"{municipalities()[code]} (kommun {code})"
    return {
        "patient": "Patienten",
        "unit": "Den vårdenhet som fattat beslutet",
    }.get(party, party)
