"""Synthetic dispensing records with a realistic structure, for the demo, the tests and the benchmark.

Regions have workplaces of several care types; prescribers have a profession and a specialty that
decides their ATC mix (palliative physicians prescribe opioids, endocrinologists somatropin);
patients belong to a workplace's list and mostly use one pharmacy; volumes follow the seasons and a
slow trend; prices and DDD are per product. A few anomalies are planted — a GP giving botulinum
toxin, a prescriber without personnummer giving testosterone, a patient collecting benzodiazepines
from many prescribers and pharmacies, sudden growth, a workplace whose benefit cost runs away. The
file carries no "truth" column: what was planted is returned (and written beside the file) so that
tests and the benchmark can score the detector, which never reads it.

Everything is vectorised with numpy and written month by month, so 100 million rows stream out in
bounded memory.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vembetalar.oversight.schema import ARROW_SCHEMA


@dataclass(frozen=True)
class Product:
    atc: str
    product_id: str
    ddd_per_pack: float
    price: float


def _p(atc: str, ddd: float, price: float) -> Product:
    return Product(atc, "V" + atc, ddd, price)


#: ATC, DDD per pack and pharmacy price per pack (SEK), roughly as in Swedish pharmacies.
PRODUCTS = {
    p.atc: p
    for p in (
        _p("C09AA05", 100, 90),  # ramipril
        _p("C10AA01", 100, 70),  # simvastatin
        _p("A02BC01", 56, 60),  # omeprazol
        _p("J01CE02", 7, 80),  # penicillin V
        _p("N02BE01", 25, 50),  # paracetamol
        _p("R03AC02", 50, 150),  # salbutamol
        _p("N06AB06", 100, 120),  # sertralin
        _p("H03AA01", 100, 90),  # levotyroxin
        _p("A10BA02", 100, 80),  # metformin
        _p("N05CF01", 30, 60),  # zopiklon
        _p("N02AX02", 25, 110),  # tramadol
        _p("N05BA01", 25, 70),  # diazepam
        _p("N02AA01", 20, 350),  # morfin
        _p("N02AB03", 15, 900),  # fentanyl
        _p("N02AA05", 20, 450),  # oxikodon
        _p("A04AA01", 10, 300),  # ondansetron
        _p("N05CD08", 10, 400),  # midazolam
        _p("A06AB08", 30, 60),  # natriumpikosulfat
        _p("H02AB01", 20, 120),  # betametason
        _p("H01AC01", 30, 9000),  # somatropin
        _p("A10AE04", 100, 700),  # insulin glargin
        _p("G03BA03", 30, 600),  # testosteron
        _p("H02AA02", 100, 150),  # fludrokortison
        _p("M05BA04", 84, 130),  # alendronat
        _p("N06BA04", 30, 700),  # metylfenidat
        _p("N05AH04", 100, 200),  # kvetiapin
        _p("N03AX16", 60, 350),  # pregabalin (gammal kod)
        _p("N06BA09", 28, 900),  # atomoxetin
        _p("N05AN01", 100, 90),  # litium
        _p("D07AC01", 30, 110),  # betametason kräm
        _p("D05BB02", 30, 1500),  # acitretin
        _p("L04AC05", 28, 30000),  # ustekinumab
        _p("D10BA01", 30, 500),  # isotretinoin
        _p("M03AX01", 1, 4500),  # botulinumtoxin
        _p("M01AE01", 30, 70),  # ibuprofen
        _p("B01AB05", 10, 500),  # enoxaparin
        _p("N02BF02", 60, 350),  # pregabalin (ny kod)
        _p("A10BJ02", 30, 1300),  # liraglutid
    )
}

#: specialty → (profession, care type, ATC mix with weights). Specialty None: peers by care type.
SPECIALTIES: dict[str, tuple[str, str, dict[str, float]]] = {
    "allmänmedicin": (
        "LK",
        "vårdcentral",
        {
            "C09AA05": 20,
            "C10AA01": 20,
            "A02BC01": 15,
            "J01CE02": 12,
            "N02BE01": 10,
            "R03AC02": 8,
            "N06AB06": 8,
            "H03AA01": 5,
            "A10BA02": 10,
            "N05CF01": 3,
            "N02AX02": 2,
            "N05BA01": 1.5,
        },
    ),
    "palliativ medicin": (
        "LK",
        "palliativ vård",
        {
            "N02AA01": 30,
            "N02AB03": 15,
            "N02AA05": 20,
            "A04AA01": 8,
            "N05CD08": 8,
            "A06AB08": 6,
            "H02AB01": 6,
            "N02BE01": 8,
        },
    ),
    "endokrinologi": (
        "LK",
        "endokrinologmottagning",
        {
            "H01AC01": 12,
            "H03AA01": 20,
            "A10AE04": 20,
            "A10BA02": 15,
            "G03BA03": 8,
            "H02AA02": 5,
            "M05BA04": 8,
        },
    ),
    "psykiatri": (
        "LK",
        "psykiatrisk mottagning",
        {
            "N06AB06": 20,
            "N06BA04": 15,
            "N05AH04": 15,
            "N05BA01": 6,
            "N05CF01": 5,
            "N03AX16": 4,
            "N06BA09": 5,
            "N05AN01": 5,
        },
    ),
    "dermatologi": (
        "LK",
        "hudmottagning",
        {"D07AC01": 15, "D05BB02": 5, "L04AC05": 2, "D10BA01": 10, "M03AX01": 0.3},
    ),
    "ortopedi": (
        "LK",
        "ortopedmottagning",
        {"M01AE01": 20, "N02AA05": 10, "N02AX02": 8, "B01AB05": 15, "M05BA04": 8, "N02BF02": 5},
    ),
    "": (
        "SSK",
        "vårdcentral",
        {"J01CE02": 10, "N02BE01": 15, "A02BC01": 8, "R03AC02": 8, "D07AC01": 5},
    ),
}
#: Share of a region's prescribers per specialty ("" = nurses without specialty).
SPECIALTY_SHARE = {
    "allmänmedicin": 0.38,
    "palliativ medicin": 0.06,
    "endokrinologi": 0.06,
    "psykiatri": 0.12,
    "dermatologi": 0.06,
    "ortopedi": 0.12,
    "": 0.20,
}
REGIONS = ["13", "14", "12", "01", "03"]
#: More dispensings in winter, fewer in July.
SEASON = np.array([1.1, 1.05, 1.05, 1.0, 0.95, 0.9, 0.75, 0.85, 1.0, 1.05, 1.1, 1.15])
PLANTED_KINDS = (
    "botox_gp",
    "opioid_gp",
    "testosterone_no_personnummer",
    "doctor_shopping",
    "stimulant_growth",
    "cost_surge",
)


@dataclass(frozen=True)
class Planted:
    """One planted anomaly: the entity the detector should find, and what it did."""

    entity_kind: str
    entity_code: str
    kind: str


@dataclass
class World:
    start: dt.date
    months: int
    regions: list[str]
    workplace_code: np.ndarray
    workplace_region: np.ndarray
    workplace_care: np.ndarray
    prescriber_code: np.ndarray
    prescriber_specialty: np.ndarray
    prescriber_workplace: np.ndarray
    prescriber_has_pnr: np.ndarray
    prescriber_weight: np.ndarray
    patients_per_workplace: int
    pharmacies_per_region: int
    planted: list[Planted] = field(default_factory=list)


def _month_start(start: dt.date, offset: int) -> dt.date:
    year, month = divmod(start.month - 1 + offset, 12)
    return dt.date(start.year + year, month + 1, 1)


def build_world(rows: int, rng: np.random.Generator, start: dt.date, months: int) -> World:
    """Workplaces and prescribers sized for ``rows`` dispensings."""
    regions = REGIONS[: 1 if rows < 2_000_000 else len(REGIONS)]
    # About 400 dispensings a prescriber in small sets; a national set (100 M) has about 40 000
    # prescribers, 2 500 dispensings each over two years.
    per_region = max(120, min(8_000, rows // 400 // len(regions)))
    wp_code: list[str] = []
    wp_region: list[str] = []
    wp_care: list[str] = []
    p_spec: list[str] = []
    p_wp: list[int] = []
    for region in regions:
        for specialty, share in SPECIALTY_SHARE.items():
            care = SPECIALTIES[specialty][1]
            count = max(8, round(per_region * share))
            # Nurses share the GPs' vårdcentraler; every other specialty has its own workplaces.
            existing = [
                i
                for i, (r, c) in enumerate(zip(wp_region, wp_care, strict=True))
                if r == region and c == care
            ]
            if not existing:
                n_wp = max(6, count // 6)
                for _ in range(n_wp):
                    wp_code.append(f"{region}{len(wp_code):05d}")
                    wp_region.append(region)
                    wp_care.append(care)
                existing = list(range(len(wp_code) - n_wp, len(wp_code)))
            chosen = rng.choice(existing, size=count)
            p_spec += [specialty] * count
            p_wp += [int(i) for i in chosen]
    n = len(p_spec)
    codes = rng.choice(np.arange(1_000_000, 10_000_000), size=n, replace=False).astype(str)
    return World(
        start=start,
        months=months,
        regions=regions,
        workplace_code=np.array(wp_code),
        workplace_region=np.array(wp_region),
        workplace_care=np.array(wp_care),
        prescriber_code=codes,
        prescriber_specialty=np.array(p_spec, dtype=object),
        prescriber_workplace=np.array(p_wp),
        prescriber_has_pnr=rng.random(n) > 0.01,
        prescriber_weight=rng.lognormal(0.0, 0.3, size=n),
        patients_per_workplace=max(300, rows // max(1, len(wp_code)) // 8),
        pharmacies_per_region=max(10, min(400, rows // 20_000)),
    )


# ---------------------------------------------------------------- rows
@dataclass
class Rows:
    """Column arrays for a batch of dispensings, before they become an Arrow table."""

    day: np.ndarray  # days since 1970-01-01
    prescriber: np.ndarray  # index into the world's prescribers
    patient: np.ndarray  # global patient number
    pharmacy: np.ndarray  # global pharmacy number
    atc: np.ndarray  # ATC strings (object)
    packs: np.ndarray


def _patients(world: World, rng: np.random.Generator, prescriber: np.ndarray) -> np.ndarray:
    """A patient from the prescriber's workplace's list: mostly the same few per prescriber."""
    workplace = world.prescriber_workplace[prescriber]
    size = world.patients_per_workplace
    # Each prescriber mostly sees "their" fifth of the workplace's list.
    slot = (prescriber % 5) * (size // 5)
    own = slot + rng.integers(0, size // 5, size=len(prescriber))
    anyone = rng.integers(0, size, size=len(prescriber))
    chosen: np.ndarray = workplace * size + np.where(rng.random(len(prescriber)) < 0.85, own, anyone)
    return chosen


def _pharmacies(
    world: World, rng: np.random.Generator, patient: np.ndarray, prescriber: np.ndarray
) -> np.ndarray:
    region = np.searchsorted(
        np.array(world.regions), world.workplace_region[world.prescriber_workplace[prescriber]]
    )
    per = world.pharmacies_per_region
    home = (patient * 2654435761) % per
    other = rng.integers(0, per, size=len(patient))
    chosen: np.ndarray = region * per + np.where(rng.random(len(patient)) < 0.85, home, other)
    return chosen


def _atc_for(rng: np.random.Generator, specialties: np.ndarray) -> np.ndarray:
    atc = np.empty(len(specialties), dtype=object)
    for specialty, (_, _, mix) in SPECIALTIES.items():
        where = np.flatnonzero(specialties == specialty)
        if len(where):
            names = list(mix)
            weights = np.array([mix[a] for a in names], dtype=float)
            atc[where] = np.array(names, dtype=object)[
                rng.choice(len(names), size=len(where), p=weights / weights.sum())
            ]
    return atc


def month_rows(world: World, rng: np.random.Generator, month: int, count: int) -> Rows:
    """``count`` ordinary dispensings in month number ``month`` of the world."""
    weights = world.prescriber_weight / world.prescriber_weight.sum()
    prescriber = rng.choice(len(weights), size=count, p=weights)
    first = _month_start(world.start, month)
    days = (_month_start(world.start, month + 1) - first).days
    epoch = (first - dt.date(1970, 1, 1)).days
    patient = _patients(world, rng, prescriber)
    return Rows(
        day=epoch + rng.integers(0, days, size=count),
        prescriber=prescriber,
        patient=patient,
        pharmacy=_pharmacies(world, rng, patient, prescriber),
        atc=_atc_for(rng, world.prescriber_specialty[prescriber]),
        packs=1 + rng.poisson(0.4, size=count),
    )


def _month_counts(world: World, rows: int) -> np.ndarray:
    """Rows per month: the seasons and a slow growth of about 3 % a year."""
    months = np.arange(world.months)
    calendar = (world.start.month - 1 + months) % 12
    weight = SEASON[calendar] * (1.0 + 0.03 * months / 12)
    counts: np.ndarray = np.floor(rows * weight / weight.sum()).astype(int)
    counts[-1] += rows - counts.sum()
    return counts


# ---------------------------------------------------------------- planted anomalies
def _pick_prescribers(
    world: World, rng: np.random.Generator, specialty: str, k: int, taken: set[int]
) -> list[int]:
    pool = [int(i) for i in np.flatnonzero(world.prescriber_specialty == specialty) if int(i) not in taken]
    chosen = [int(i) for i in rng.choice(pool, size=k, replace=False)]
    taken.update(chosen)
    return chosen


def planted_rows(world: World, rng: np.random.Generator, per_kind: int) -> Rows:
    """The anomalies, ``per_kind`` of each; records them in ``world.planted``."""
    epoch0 = (world.start - dt.date(1970, 1, 1)).days
    total_days = (_month_start(world.start, world.months) - world.start).days
    last3 = (_month_start(world.start, world.months - 3) - dt.date(1970, 1, 1)).days
    parts: list[Rows] = []
    taken: set[int] = set()

    def add(
        prescriber: int | np.ndarray,
        atc: str,
        n: int,
        days: tuple[int, int],
        patient: np.ndarray | None = None,
    ) -> None:
        presc = np.full(n, prescriber) if isinstance(prescriber, int) else prescriber
        pat = patient if patient is not None else _patients(world, rng, presc)
        parts.append(
            Rows(
                day=rng.integers(days[0], days[1], size=n),
                prescriber=presc,
                patient=pat,
                pharmacy=_pharmacies(world, rng, pat, presc),
                atc=np.full(n, atc, dtype=object),
                packs=1 + rng.poisson(0.5, size=n),
            )
        )

    whole = (epoch0, epoch0 + total_days)
    for p in _pick_prescribers(world, rng, "allmänmedicin", per_kind, taken):
        add(p, "M03AX01", int(rng.integers(150, 300)), whole)
        world.planted.append(Planted("prescriber", str(world.prescriber_code[p]), "botox_gp"))
    for p in _pick_prescribers(world, rng, "allmänmedicin", per_kind, taken):
        add(p, "N02AA05", int(rng.integers(300, 500)), whole)
        world.planted.append(Planted("prescriber", str(world.prescriber_code[p]), "opioid_gp"))
    for p in _pick_prescribers(world, rng, "allmänmedicin", per_kind, taken):
        world.prescriber_has_pnr[p] = False
        add(p, "G03BA03", int(rng.integers(120, 220)), whole)
        world.planted.append(
            Planted("prescriber", str(world.prescriber_code[p]), "testosterone_no_personnummer")
        )
    for i in range(per_kind):
        # One patient, 7 prescribers of different workplaces, 7 pharmacies, 60 days.
        region = world.regions[i % len(world.regions)]
        pool = np.flatnonzero(world.workplace_region[world.prescriber_workplace] == region)
        prescribers = rng.choice(pool, size=7, replace=False)
        patient_no = len(world.workplace_code) * world.patients_per_workplace + i
        begin = int(rng.integers(epoch0, epoch0 + total_days - 60))
        presc = np.repeat(prescribers, 2)
        pat = np.full(len(presc), patient_no)
        parts.append(
            Rows(
                day=rng.integers(begin, begin + 60, size=len(presc)),
                prescriber=presc,
                patient=pat,
                pharmacy=np.tile(
                    rng.choice(world.pharmacies_per_region * len(world.regions), 7, replace=False), 2
                ),
                atc=np.full(len(presc), "N05BA01", dtype=object),
                packs=np.full(len(presc), 2),
            )
        )
        world.planted.append(Planted("patient", _patient_name(patient_no), "doctor_shopping"))
    for p in _pick_prescribers(world, rng, "psykiatri", per_kind, taken):
        add(p, "N06BA04", int(rng.integers(150, 250)), (last3, epoch0 + total_days))
        world.planted.append(Planted("prescriber", str(world.prescriber_code[p]), "stimulant_growth"))
    for p in _pick_prescribers(world, rng, "allmänmedicin", per_kind, taken):
        add(p, "A10BJ02", int(rng.integers(250, 400)), (last3, epoch0 + total_days))
        workplace = str(world.workplace_code[world.prescriber_workplace[p]])
        world.planted.append(Planted("workplace", workplace, "cost_surge"))
    return Rows(
        day=np.concatenate([r.day for r in parts]),
        prescriber=np.concatenate([r.prescriber for r in parts]),
        patient=np.concatenate([r.patient for r in parts]),
        pharmacy=np.concatenate([r.pharmacy for r in parts]),
        atc=np.concatenate([r.atc for r in parts]),
        packs=np.concatenate([r.packs for r in parts]),
    )


def _patient_name(number: int) -> str:
    return f"P{number:09d}"


# ---------------------------------------------------------------- to Arrow
def to_table(world: World, rows: Rows, rng: np.random.Generator) -> pa.Table:
    n = len(rows.day)
    wp = world.prescriber_workplace[rows.prescriber]
    product = [PRODUCTS[a] for a in rows.atc] if n < 50_000 else None
    if product is not None:
        ddd_pack = np.array([p.ddd_per_pack for p in product])
        price = np.array([p.price for p in product])
    else:
        names = np.array(list(PRODUCTS), dtype=object)
        lookup = {a: i for i, a in enumerate(names)}
        index = np.vectorize(lookup.__getitem__, otypes=[int])(rows.atc)
        ddd_pack = np.array([PRODUCTS[a].ddd_per_pack for a in names])[index]
        price = np.array([PRODUCTS[a].price for a in names])[index]
    packs = rows.packs.astype(np.int32)
    cost = np.round(price * packs * rng.uniform(0.95, 1.05, size=n), 2)
    within = rng.random(n) < 0.96
    benefit = np.where(within, np.round(cost * 0.85, 2), 0.0)
    patients = pa.array(rows.patient, pa.int64())
    pseudonym = pc.binary_join_element_wise("P", pc.utf8_lpad(pc.cast(patients, pa.string()), 9, "0"), "")
    specialty = world.prescriber_specialty[rows.prescriber]
    profession = np.array([SPECIALTIES[s][0] for s in SPECIALTIES], dtype=object)
    spec_index = {s: i for i, s in enumerate(SPECIALTIES)}
    prof = profession[np.vectorize(spec_index.__getitem__, otypes=[int])(specialty)] if n else profession[:0]
    home_region = world.workplace_region[wp]
    pharmacy = pc.binary_join_element_wise("A", pc.cast(pa.array(rows.pharmacy, pa.int64()), pa.string()), "")
    columns = {
        "dispensed_on": pa.array(rows.day.astype("int32"), pa.int32()).cast(pa.date32()),
        "patient_pseudonym": pseudonym,
        "patient_home_region": pa.array(home_region, pa.string()),
        "patient_birth_year": pa.array(1930 + (rows.patient * 7919) % 85, pa.int32()),
        "patient_sex": pa.array(np.where(rows.patient % 2 == 0, "K", "M"), pa.string()),
        "prescriber_code": pa.array(world.prescriber_code[rows.prescriber], pa.string()),
        "prescriber_has_personnummer": pa.array(world.prescriber_has_pnr[rows.prescriber], pa.bool_()),
        "prescriber_profession": pa.array(prof, pa.string()),
        "prescriber_specialty": pa.array(np.where(specialty == "", None, specialty), pa.string()),
        "workplace_code": pa.array(world.workplace_code[wp], pa.string()),
        "workplace_region": pa.array(world.workplace_region[wp], pa.string()),
        "workplace_care_type": pa.array(world.workplace_care[wp], pa.string()),
        "pharmacy_id": pharmacy,
        "atc": pa.array(rows.atc, pa.string()),
        "product_id": pc.binary_join_element_wise("V", pa.array(rows.atc, pa.string()), ""),
        "packs": pa.array(packs, pa.int32()),
        "ddd": pa.array(np.round(ddd_pack * packs, 3), pa.float64()),
        "cost_sek": pa.array(cost, pa.float64()),
        "benefit_cost_sek": pa.array(benefit, pa.float64()),
        "within_benefit": pa.array(within, pa.bool_()),
    }
    return pa.table(columns, schema=ARROW_SCHEMA)


def planted_per_kind(rows: int) -> int:
    return 1 if rows < 1_000_000 else 5


def generate(
    rows: int,
    *,
    seed: int = 7,
    start: dt.date = dt.date(2023, 1, 1),
    months: int = 24,
    per_kind: int | None = None,
) -> tuple[Iterator[pa.Table], World]:
    """About ``rows`` dispensings, month by month, planted anomalies in the last month's table.
    The world (with ``planted``) is filled in before the first table is yielded."""
    rng = np.random.default_rng(seed)
    world = build_world(rows, rng, start, months)
    extra = planted_rows(world, rng, per_kind if per_kind is not None else planted_per_kind(rows))
    counts = _month_counts(world, max(0, rows - len(extra.day)))

    def tables() -> Iterator[pa.Table]:
        for month, count in enumerate(counts):
            yield to_table(world, month_rows(world, rng, month, int(count)), rng)
        yield to_table(world, extra, rng)

    return tables(), world


def write(
    path: Path,
    rows: int,
    *,
    seed: int = 7,
    start: dt.date = dt.date(2023, 1, 1),
    months: int = 24,
    per_kind: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Planted]:
    """Write the rows to ``path`` (Parquet, or CSV for ``.csv``) and what was planted to
    ``path`` + ``.planted.csv``; return the planted anomalies."""
    tables, world = generate(rows, seed=seed, start=start, months=months, per_kind=per_kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(path, ARROW_SCHEMA) as csv_writer:
            for table in tables:
                csv_writer.write_table(table)
                if progress:
                    progress(table.num_rows)
    else:
        with pq.ParquetWriter(path, ARROW_SCHEMA, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table, row_group_size=1_000_000)
                if progress:
                    progress(table.num_rows)
    with planted_path(path).open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["entity_kind", "entity_code", "kind"])
        for item in world.planted:
            out.writerow([item.entity_kind, item.entity_code, item.kind])
    return world.planted


def planted_path(path: Path) -> Path:
    return path.with_name(path.name + ".planted.csv")


def read_planted(path: Path) -> list[Planted]:
    with planted_path(path).open(encoding="utf-8", newline="") as handle:
        return [Planted(r["entity_kind"], r["entity_code"], r["kind"]) for r in csv.DictReader(handle)]
