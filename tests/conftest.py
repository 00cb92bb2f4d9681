"""Shared fixtures: the bundled engine, and a way to write small packs for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import load_packs


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine(load_packs())


SOURCE = "Regionen där patienten är folkbokförd betalar alltid. Ingen annan betalar något alls."


def write_pack(
    root: Path, pack_id: str, pack_yaml: str, rules_yaml: str, tests_yaml: str | None = None
) -> Path:
    """A pack folder from YAML snippets; the source text is SOURCE."""
    folder = root / pack_id
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(textwrap.dedent(pack_yaml), encoding="utf-8")
    (folder / "rules.yaml").write_text(textwrap.dedent(rules_yaml), encoding="utf-8")
    (folder / "source.txt").write_text(SOURCE, encoding="utf-8")
    if tests_yaml is not None:
        (folder / "tests.yaml").write_text(textwrap.dedent(tests_yaml), encoding="utf-8")
    return folder


def pack_header(pack_id: str, scope: str = "{kind: assistive_device}", extra: str = "") -> str:
    return f"""\
    id: {pack_id}
    title: Testavtal {pack_id}
    parties: ["region:01"]
    valid_from: null
    valid_to: null
    source: {{document: test.txt, title: Test}}
    scope: {scope}
    citations:
      betalar:
        document: test.txt
        section: "§ 1"
        quote: "Regionen där patienten är folkbokförd betalar alltid."
    {extra}
    """
