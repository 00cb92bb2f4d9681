"""``vembetalar oversight run``: the indicators over a period, as one ranked list of explained flags.

The SQL steps in ``sql/`` compute, per indicator, each entity's value and a robust score against its
peers (see ``docs/oversight.md``); everything after that — the stable flag id, one ranking across
indicators, the Swedish explanation — is done here on the few candidate rows, identically whatever
engine computed them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vembetalar.oversight.engines import Engine, EngineError, StepKind, make_engine
from vembetalar.oversight.schema import WatchGroup, load_watchlist
from vembetalar.oversight.store import Store

INDICATORS = (
    "watched_volume",
    "rare_for_peers",
    "no_personnummer",
    "many_prescribers",
    "sudden_growth",
    "benefit_cost_trend",
)
INDICATOR_NAMES = {
    "watched_volume": "Bevakad substans, volym mot kollegor",
    "rare_for_peers": "Ovanlig substans bland kollegor",
    "no_personnummer": "Förskrivare utan svenskt person-/samordningsnummer",
    "many_prescribers": "Många förskrivare och apotek inom 90 dagar",
    "sudden_growth": "Plötslig ökning mot egen historik",
    "benefit_cost_trend": "Förmånskostnad över tid mot liknande arbetsplatser",
}
ENTITY_NAMES = {"prescriber": "förskrivare", "workplace": "arbetsplats", "patient": "patient"}
#: The contract's columns, then the numbers behind the explanation (additional, documented).
FLAG_COLUMNS = (
    "flag_id",
    "rank",
    "entity_kind",
    "entity_code",
    "indicator",
    "score",
    "explanation",
    "subject",
    "peer_group",
    "value",
    "peer_n",
    "peer_median",
    "peer_p99",
    "period_from",
    "period_to",
)


class BadRun(ValueError):
    """The run cannot start: no data, a bad period, a bad output file."""


@dataclass(frozen=True)
class Options:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    top: int = 500
    #: A flag needs a robust score of at least this (Iglewicz & Hoaglin's 3.5 for modified z).
    min_score: float = 3.5
    #: Peer groups smaller than this are not compared.
    min_peers: int = 5
    recent_months: int = 3
    min_history_months: int = 6
    window_days: int = 90
    #: "Rare": at most this share of the peers prescribe the substance at all.
    rare_share: float = 0.05
    #: The smallest spread a score divides by, in uttag (DDD and cost: that many uttag's worth at
    #: the peers' typical DDD and cost per uttag): one is not "10 spreads above" peers who all
    #: have 0 because of a handful of uttag.
    floor_uttag: float = 2.0
    #: Nor below this share of the median: list size and part time make such differences ordinary.
    relative_floor: float = 0.5
    floor_growth: float = 0.25
    cost_smoothing: float = 1000.0
    watchlist: Path | None = None


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    sql: str
    source: str


@dataclass(frozen=True)
class Flag:
    flag_id: str
    rank: int
    entity_kind: str
    entity_code: str
    indicator: str
    score: float
    explanation: str
    subject: str
    peer_group: str
    value: float
    peer_n: int
    peer_median: float | None
    peer_p99: float | None
    period_from: str
    period_to: str

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    period_from: dt.date
    period_to: dt.date
    engine: str
    candidates: int
    flags: list[Flag] = field(default_factory=list)


STEP_HEADER = re.compile(r"^-- step: (\w+) (table|view)\s*$")


def steps() -> list[Step]:
    """The SQL steps in file order; each file holds ``-- step: NAME table|view`` sections."""
    folder = resources.files("vembetalar.oversight").joinpath("sql")
    out: list[Step] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        current: tuple[str, StepKind] | None = None
        lines: list[str] = []
        for line in [*entry.read_text(encoding="utf-8").splitlines(), "-- step: _end view"]:
            header = STEP_HEADER.match(line)
            if header:
                if current is not None:
                    out.append(Step(current[0], current[1], "\n".join(lines).strip(), entry.name))
                kind: StepKind = "table" if header.group(2) == "table" else "view"
                current, lines = (header.group(1), kind), []
            elif current is not None and not line.startswith("--"):
                lines.append(line)
    return out


def data_period(store: Store) -> tuple[dt.date, dt.date]:
    """The first and last dispensing day in the store."""
    if not store.has_data():
        raise BadRun(f"{store.root}: inga importerade uttag (kör vembetalar oversight import först)")
    pattern = str(store.dispensings / "month=*" / "*.parquet").replace("'", "''")
    with duckdb.connect() as con:
        found = con.execute(
            f"SELECT min(dispensed_on), max(dispensed_on) FROM read_parquet('{pattern}')"
        ).fetchone()
    if not found or found[0] is None:
        raise BadRun(f"{store.root}: inga importerade uttag")
    return found[0], found[1]


def parameters(options: Options, date_from: dt.date, date_to: dt.date, engine: Engine) -> dict[str, str]:
    return {
        "day_no": engine.day_no,
        "from_date": date_from.isoformat(),
        "to_date": date_to.isoformat(),
        "min_score": repr(float(options.min_score)),
        "min_peers": str(int(options.min_peers)),
        "recent_months": str(int(options.recent_months)),
        "min_history_months": str(int(options.min_history_months)),
        "window_days": str(int(options.window_days)),
        "rare_share": repr(float(options.rare_share)),
        "floor_uttag": repr(float(options.floor_uttag)),
        "relative_floor": repr(float(options.relative_floor)),
        "floor_growth": repr(float(options.floor_growth)),
        "cost_smoothing": repr(float(options.cost_smoothing)),
    }


def run(
    store: Store,
    options: Options,
    engine_name: str = "duckdb",
    progress: Callable[[str, int, int], None] | None = None,
    engine: Engine | None = None,
) -> RunResult:
    """Every indicator over the period; ``progress(step, done, total)`` after each step."""
    watch = load_watchlist(options.watchlist)
    first, last = data_period(store)
    date_from = options.date_from or first
    date_to = options.date_to or last
    if date_from > date_to:
        raise BadRun(f"--from {date_from} ligger efter --to {date_to}")
    if options.top < 1:
        raise BadRun("--top ska vara minst 1")
    own = engine is None
    engine = engine or make_engine(engine_name)
    try:
        engine.load(store, watch)
        values = parameters(options, date_from, date_to, engine)
        plan = steps()
        current = "start"
        try:
            for done, step in enumerate(plan, start=1):
                current = step.name
                engine.keep(step.name, step.sql.format(**values), step.kind)
                if progress:
                    progress(step.name, done, len(plan))
            # Each indicator's flags fetched on their own (a UNION of Spark's checkpointed steps
            # trips its constraint propagation); they share one shape.
            rows = []
            for name in INDICATORS:
                current = f"flags_{name}"
                rows += engine.fetch(f"SELECT * FROM flags_{name}")
        except Exception as exc:  # the engine's own errors (memory, disk, a broken file), one line
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise EngineError(
                f"{engine.name}: steget {current} misslyckades ({type(exc).__name__}: {message})"
            ) from None
    finally:
        if own:
            engine.close()
    result = RunResult(date_from, date_to, engine.name, len(rows))
    result.flags = rank(rows, watch, date_from, date_to, options)
    return result


# ---------------------------------------------------------------- ranking and ids
def flag_id(
    indicator: str, entity_kind: str, entity_code: str, subject: str, date_from: dt.date, date_to: dt.date
) -> str:
    """Stable across reruns of the same period, so a review status stays with its flag."""
    key = "|".join([indicator, entity_kind, entity_code, subject, date_from.isoformat(), date_to.isoformat()])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _rounded(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def rank(
    rows: list[dict[str, Any]],
    watch: tuple[WatchGroup, ...],
    date_from: dt.date,
    date_to: dt.date,
    options: Options,
) -> list[Flag]:
    """One ranking across indicators by score (ties by indicator and code), the top N kept."""
    names = {g.code: g.name for g in watch}
    scored = []
    for row in rows:
        score = _rounded(row["score"])
        if score is None:
            continue
        scored.append((score, row))
    scored.sort(
        key=lambda item: (
            -item[0],
            item[1]["indicator"],
            item[1]["entity_kind"],
            item[1]["entity_code"],
            item[1]["subject"],
        )
    )
    flags = []
    for position, (score, row) in enumerate(scored[: options.top], start=1):
        flags.append(
            Flag(
                flag_id=flag_id(
                    row["indicator"],
                    row["entity_kind"],
                    row["entity_code"],
                    row["subject"],
                    date_from,
                    date_to,
                ),
                rank=position,
                entity_kind=row["entity_kind"],
                entity_code=row["entity_code"],
                indicator=row["indicator"],
                score=score,
                explanation=explain(row, names, date_from, date_to, options),
                subject=row["subject"],
                peer_group=row["peer_group"],
                value=_rounded(row["value"]) or 0.0,
                peer_n=int(row["peer_n"]),
                peer_median=_rounded(row["med"]),
                peer_p99=_rounded(row["p99"]),
                period_from=date_from.isoformat(),
                period_to=date_to.isoformat(),
            )
        )
    return flags


# ---------------------------------------------------------------- explanations
def number(value: Any, decimals: int = 0) -> str:
    """Swedish style: 1 234 567 and 12,5."""
    x = float(value or 0)
    if decimals == 0 or float(round(x)) == round(x, decimals):
        text = f"{round(x):,}".replace(",", " ")
    else:
        text = f"{x:,.{decimals}f}".replace(",", " ").replace(".", ",")
    return text


def period_label(date_from: dt.date, date_to: dt.date) -> str:
    if date_from == dt.date(date_from.year, 1, 1) and date_to == dt.date(date_from.year, 12, 31):
        return str(date_from.year)
    return f"{date_from.isoformat()}–{date_to.isoformat()}"


MEASURE_UNITS = {"uttag": "uttag", "ddd": "DDD", "kostnad": "kr"}


def explain(
    row: dict[str, Any], names: dict[str, str], date_from: dt.date, date_to: dt.date, options: Options
) -> str:
    indicator = row["indicator"]
    period = period_label(date_from, date_to)
    subject = names.get(row["subject"], row["subject"])
    peers = row["peer_group"]
    med, p99 = row["med"], row["p99"]
    if indicator == "watched_volume":
        unit = MEASURE_UNITS.get(row["measure"], row["measure"])
        decimals = 0 if unit == "kr" else 1
        return (
            f"{subject}: {number(row['aux1'])} uttag {period} ({number(row['aux2'])} DDD, "
            f"förmånskostnad {number(row['aux3'])} kr); övriga kollegor inom {peers} "
            f"({int(row['peer_n']) - 1} st): median {number(med, decimals)}, 99:e percentil "
            f"{number(p99, decimals)} {unit}"
        )
    if indicator == "rare_for_peers":
        others = int(row["peer_n"]) - 1
        return (
            f"{subject}: {number(row['value'])} uttag {period}; av {others} kollegor inom {peers} "
            f"har {number(row['aux1'])} förskrivit den alls"
        )
    if indicator == "no_personnummer":
        return (
            f"förskrivare utan svenskt person- eller samordningsnummer: {number(row['value'])} uttag av "
            f"bevakade substanser {period} ({number(row['aux1'])} DDD, {number(row['aux2'])} kr); "
            f"kollegor inom {peers}: median {number(med, 1)}, 99:e percentil {number(p99, 1)} uttag"
        )
    if indicator == "many_prescribers":
        start = ""
        if row["aux3"] is not None:
            start = " från " + (dt.date(1970, 1, 1) + dt.timedelta(days=int(row["aux3"]))).isoformat()
        return (
            f"{subject}: {number(row['aux1'])} förskrivare och {number(row['aux2'])} apotek inom "
            f"{options.window_days} dagar{start}; patienter med {subject} ({row['peer_n']} st): "
            f"median {number(med, 1)}, 99:e percentil {number(p99, 1)}"
        )
    if indicator == "sudden_growth":
        return (
            f"{subject}: {number(row['value'], 1)} uttag per månad de senaste {options.recent_months} "
            f"månaderna ({number(row['aux1'])} st), mot median {number(med, 1)} och 99:e percentil "
            f"{number(p99, 1)} per månad under de {row['peer_n']} månaderna innan"
        )
    if indicator == "benefit_cost_trend":
        change = math.exp(float(row["value"])) - 1
        peer_change = math.exp(float(med or 0)) - 1
        return (
            f"förmånskostnad {number(row['aux1'])} kr per månad de senaste {options.recent_months} "
            f"månaderna mot {number(row['aux2'])} kr innan ({change:+.0%}); liknande arbetsplatser "
            f"({peers}, {row['peer_n']} st): median {peer_change:+.0%}"
        ).replace("%", " %")
    return str(row)


# ---------------------------------------------------------------- writing
def flags_table(flags: list[Flag]) -> pa.Table:
    schema = pa.schema(
        [
            ("flag_id", pa.string()),
            ("rank", pa.int32()),
            ("entity_kind", pa.string()),
            ("entity_code", pa.string()),
            ("indicator", pa.string()),
            ("score", pa.float64()),
            ("explanation", pa.string()),
            ("subject", pa.string()),
            ("peer_group", pa.string()),
            ("value", pa.float64()),
            ("peer_n", pa.int64()),
            ("peer_median", pa.float64()),
            ("peer_p99", pa.float64()),
            ("period_from", pa.string()),
            ("period_to", pa.string()),
        ]
    )
    return pa.Table.from_pylist([f.row() for f in flags], schema=schema)


def write_flags(flags: list[Flag], path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise BadRun(f"{path.name}: --out ska sluta på .csv eller .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = flags_table(flags)
    if suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
