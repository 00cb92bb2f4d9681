"""Possible worlds: what a pack's rules can answer while some facts are unknown.

A case is summed up by which of the pack's rules can still fire and which unknown fields those
rules read (``summarise``). Each unknown field can only fall into a few classes of values
that the pack's tests treat alike — a cost below or from 10 000 kr, say — so the worlds the case
could be in are few and can all be tried. An output the rules give alike in every world is
known; one that differs depends on the unknown facts, and the fields whose value changes it are
the ones to ask for. This is exact for the condition language, and it is the same computation
for one case and for a batch (which runs it once per distinct summary).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vembetalar.model.case import KIND_AREAS, case_fields
from vembetalar.rules.analysis import representatives
from vembetalar.rules.pack import Pack

NO_RULE = -1
#: Beyond this many worlds the case is too open to reason about; every output waits.
MAX_WORLDS = 200_000

Truths = tuple[bool | None, ...]
Alive = tuple[bool, ...]


@dataclass(frozen=True)
class Worlds:
    """The worlds a case could be in, and which rule fires in each table in each of them."""

    unknown: tuple[str, ...]
    #: Number of value classes per unknown field; worlds are numbered row-major over these.
    axes: tuple[int, ...]
    #: The distinct outcomes: per table the index of the rule that fires, or NO_RULE.
    outcomes: tuple[tuple[int, ...], ...]
    #: For every world, the index of its outcome in ``outcomes``.
    world_outcome: np.ndarray
    too_many: bool = False


def summarise(pack: Pack, values: dict[str, object]) -> tuple[Alive, tuple[str, ...]]:
    """A case as the rules see it: which rules can still fire (none of their tests is known to
    fail and no earlier rule in the table surely fires), and which unknown fields those rules
    read. Two cases with the same summary get the
    same answer, whatever else differs — which is what lets a batch decide each summary once."""
    truths = [c.test(values[c.field]) for c in pack.conditions]
    alive_list: list[bool] = []
    for table in pack.tables:
        settled = False  # a rule before this one surely fires, so this one never can
        for rule in table.rules:
            tests = [truths[i] for i in rule.condition_index]
            can_fire = not settled and all(t is not False for t in tests)
            alive_list.append(can_fire)
            settled = settled or (can_fire and all(t is True for t in tests))
    alive = tuple(alive_list)
    unknown = {
        pack.conditions[i].field
        for r, a in zip(pack.rules(), alive, strict=True)
        if a
        for i in r.condition_index
        if truths[i] is None
    }
    return alive, tuple(f for f in pack_fields(pack) if f in unknown)


@lru_cache(maxsize=65_536)
def summarised(pack: Pack, facts: tuple[object, ...]) -> tuple[Alive, tuple[str, ...]]:
    """``summarise`` for the values of ``pack_fields(pack)``, in that order; cases repeat."""
    return summarise(pack, dict(zip(pack_fields(pack), facts, strict=True)))


@lru_cache(maxsize=256)
def pack_fields(pack: Pack) -> tuple[str, ...]:
    """The fields the pack's rules read, in a fixed order."""
    return tuple(dict.fromkeys(c.field for c in pack.conditions))


@lru_cache(maxsize=1024)
def field_classes(pack: Pack, field: str, kind: str) -> tuple[tuple[int, ...], tuple[Truths, ...]]:
    """The pack's tests on ``field``, and the truth values they can take together — one tuple
    per class of values. An area that does not fit the kind of case is no possible world."""
    index = tuple(i for i, c in enumerate(pack.conditions) if c.field == field)
    conds = [pack.conditions[i] for i in index]
    spec = case_fields()[field]
    values = representatives(spec, conds)
    if field == "product.area" and kind in KIND_AREAS:
        values = [v for v in values if v in KIND_AREAS[kind]] or values
    signatures = tuple(dict.fromkeys(tuple(c.test(v) for c in conds) for v in values))
    return index, signatures


@lru_cache(maxsize=256)
def _layout(pack: Pack) -> tuple[tuple[tuple[tuple[int, str], ...], ...], ...]:
    """Per table, per rule: its tests as (index, field) pairs — fixed for a pack, read often."""
    return tuple(
        tuple(tuple((i, pack.conditions[i].field) for i in r.condition_index) for r in t.rules)
        for t in pack.tables
    )


@lru_cache(maxsize=8192)
def enumerate_worlds(pack: Pack, alive: Alive, unknown: tuple[str, ...], kind: str) -> Worlds:
    layout = _layout(pack)
    if not unknown:
        # Every rule that can still fire surely does; the first in each table is the hit.
        outcome: list[int] = []
        flat = iter(alive)
        for table in layout:
            hits = [position for position, _ in enumerate(table) if next(flat)]
            outcome.append(hits[0] if hits else NO_RULE)
        return Worlds((), (), (tuple(outcome),), np.zeros(1, dtype=np.int32))
    classes = [field_classes(pack, f, kind) for f in unknown]
    axes = tuple(len(sigs) for _, sigs in classes)
    if math.prod(axes) > MAX_WORLDS:
        return Worlds(unknown, axes, (), np.zeros(0, dtype=np.int32), too_many=True)
    # Per table, per rule: None when the rule cannot fire, else the tests still open.
    open_tests: list[list[tuple[int, ...] | None]] = []
    flat_alive = iter(alive)
    unknown_set = set(unknown)
    for table in layout:
        row: list[tuple[int, ...] | None] = []
        for tests in table:
            can_fire = next(flat_alive)
            row.append(tuple(i for i, f in tests if f in unknown_set) if can_fire else None)
        open_tests.append(row)
    outcomes: dict[tuple[int, ...], int] = {}
    world_outcome = np.empty(math.prod(axes), dtype=np.int32)
    filled: list[bool | None] = [None] * len(pack.conditions)
    for n, choice in enumerate(itertools.product(*[range(a) for a in axes])):
        for (index, sigs), c in zip(classes, choice, strict=True):
            for i, value in zip(index, sigs[c], strict=True):
                filled[i] = value
        found = tuple(_hit(row, filled) for row in open_tests)
        world_outcome[n] = outcomes.setdefault(found, len(outcomes))
    return Worlds(unknown, axes, tuple(outcomes), world_outcome)


def _hit(rules: Sequence[tuple[int, ...] | None], truths: Sequence[bool | None]) -> int:
    for position, tests in enumerate(rules):
        if tests is not None and all(truths[i] for i in tests):
            return position
    return NO_RULE


def varying_fields(worlds: Worlds, labels: Sequence[int]) -> list[str]:
    """The unknown fields along which ``labels`` (one per outcome) changes in some world."""
    if len(set(labels)) <= 1:
        return []
    grid = np.asarray(labels, dtype=np.int64)[worlds.world_outcome].reshape(worlds.axes)
    out = []
    for axis, name in enumerate(worlds.unknown):
        first = np.take(grid, [0], axis=axis)
        if bool((grid != first).any()):
            out.append(name)
    return out
