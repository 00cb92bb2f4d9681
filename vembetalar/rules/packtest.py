"""Running a pack's own test cases (tests.yaml) and measuring which of its rules they reach.

Test cases are written by the people who maintain the agreement, as situations a clerk would
describe; the runner decides each with the full engine (all packs loaded), so a test also proves
that the right agreement is chosen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from vembetalar.model.case import Case
from vembetalar.model.errors import one_line
from vembetalar.rules.engine import Engine
from vembetalar.rules.pack import Pack


@dataclass
class CaseResult:
    name: str
    failures: list[str]


@dataclass
class PackTestReport:
    pack: str
    results: list[CaseResult] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.failures]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed and not self.uncovered


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of a test's case over the file's defaults; ``null`` in the case removes a key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def lookup(data: Any, path: str) -> Any:
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def compare(decision: dict[str, Any], expect: dict[str, Any]) -> list[str]:
    """``key: value`` must be equal; ``key~: text`` must be contained (in a string or a list)."""
    failures = []
    for raw_key, wanted in expect.items():
        contains = raw_key.endswith("~")
        key = raw_key.rstrip("~")
        try:
            got = lookup(decision, key)
        except KeyError:
            failures.append(f"{key}: finns inte i beslutet")
            continue
        if contains:
            haystack = got if isinstance(got, list) else [got]
            if not any(str(wanted) in str(item) for item in haystack):
                failures.append(f"{key}: innehåller inte {wanted!r} (fick {got!r})")
        elif got != wanted:
            failures.append(f"{key}: väntade {wanted!r}, fick {got!r}")
    return failures


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def run_pack_tests(engine: Engine, pack: Pack) -> PackTestReport:
    report = PackTestReport(pack.id)
    if pack.tests is None:
        report.uncovered = [r.id for r in pack.rules()]
        return report
    reached: set[str] = set()
    for test in pack.tests.cases:
        raw = merge(pack.tests.defaults, test.case)
        try:
            case = Case.model_validate(raw)
        except ValidationError as exc:
            report.results.append(CaseResult(test.name, [f"ogiltigt ärende: {one_line(exc)}"]))
            continue
        decision = engine.decide(case)
        reached |= set(decision.rule_ids)
        failures = compare(decision.model_dump(), test.expect)
        if test.quote is not None and _norm(test.quote) not in _norm(pack.source_text):
            failures.append(f"quote: {test.quote!r} finns inte ordagrant i källan")
        report.results.append(CaseResult(test.name, failures))
    report.uncovered = [r.id for r in pack.rules() if r.full_id not in reached]
    return report
