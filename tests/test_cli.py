"""The command line as a user meets it: ``vembetalar decide``, ``decide --batch`` and ``packs …``.

Exit codes, stderr and "no traceback" are checked on real processes (``python -m vembetalar.cli``).
Starting Python with Polars costs about a second, so those processes are started together, a few at
a time, by one module fixture (``runs``). The many single-case routes, the ``packs`` listings and the
bug demonstrations go through Typer's CliRunner, which runs the very same ``app`` in-process (one test
checks that a real process and CliRunner give the same decision).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import vembetalar
import vembetalar.cli as cli_module
from vembetalar.cli import app
from vembetalar.model.decision import Decision
from vembetalar.rules import packtest
from vembetalar.rules.pack import load_packs

PACKS_DIR = Path(vembetalar.__file__).parent / "packs"
VGR = "vgr_halland_undantag_2023"
SKANE = "skane_hjalpmedel_utomlans"
VARMLAND = "varmland_kommun_medtech_2021"

# Wide, colourless output and no extra packs from the caller's environment.
ENV = {k: v for k, v in os.environ.items() if k not in ("VEMBETALAR_PACKS", "FORCE_COLOR")}
ENV |= {"COLUMNS": "400", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}

Job = tuple[list[str], str | None]
Proc = subprocess.CompletedProcess[str]


def cli(*args: object, stdin: str | None = None) -> Proc:
    return subprocess.run(
        [sys.executable, "-m", "vembetalar.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        encoding="utf-8",
        env=ENV,
        timeout=120,
        check=False,
    )


def cli_many(jobs: dict[str, Job]) -> dict[str, Proc]:
    """Run several command lines at once; each is still its own process with its own exit code."""
    workers = max(2, min(len(jobs), (os.cpu_count() or 2) + 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(cli, *args, stdin=stdin) for key, (args, stdin) in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def in_process(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin, env={"VEMBETALAR_PACKS": None, "COLUMNS": "400"})


@pytest.fixture(scope="module", autouse=True)
def in_process_setup() -> Any:
    """In-process runs read the bundled packs once (the YAML takes a third of a second to read;
    the real processes below read them every time, as a user's would) and print to a console as
    wide as the real processes' (COLUMNS=400), whatever terminal pytest itself runs in."""
    cache: dict[tuple[str, ...], list[Any]] = {}

    def load(extra: Any = ()) -> list[Any]:
        key = tuple(map(str, extra))
        if key not in cache:
            cache[key] = load_packs(extra)
        return cache[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli_module, "load_packs", load)
        mp.setattr(cli_module, "out", Console(width=400))
        mp.setattr(cli_module, "err", Console(width=400, stderr=True))
        yield


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def get(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def flat(case: dict[str, Any]) -> dict[str, Any]:
    """A nested case as the dotted columns of a batch file."""
    out: dict[str, Any] = {}
    for key, value in case.items():
        if isinstance(value, dict):
            out |= {f"{key}.{sub}": v for sub, v in value.items()}
        else:
            out[key] = value
    return out


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _sources() -> dict[str, str]:
    """Agreement title → its source text (whitespace-normalised), for every bundled pack."""
    out = {}
    for folder in PACKS_DIR.iterdir():
        if (folder / "pack.yaml").exists():
            meta = yaml.safe_load((folder / "pack.yaml").read_text(encoding="utf-8"))
            out[meta["title"]] = norm((folder / "source.txt").read_text(encoding="utf-8"))
    return out


SOURCES = _sources()
CITATION = re.compile(r"^(?P<title>.+?), (?P<section>[^«]+?): «(?P<quote>.+)»$", re.S)


def _pack_cases() -> list[Any]:
    """Every situation the packs' own tests.yaml describe, with its expectations: the agreements'
    outcomes live there (once); this module checks the command-line contract on all of them."""
    params = []
    for pack in sorted(load_packs(), key=lambda p: p.id):
        assert pack.tests is not None
        for test in pack.tests.cases:
            case = packtest.merge(pack.tests.defaults, test.case)
            case = json.loads(json.dumps(case, default=str))
            params.append(pytest.param(case, test.expect, id=f"{pack.id}/{test.name}"))
    return params


PACK_CASES = _pack_cases()
CASES = {p.id: p.values[0] for p in PACK_CASES}


def case_named(pack_id: str, name: str) -> dict[str, Any]:
    return dict(CASES[f"{pack_id}/{name}"])


BILAGA_2 = (VGR, "Hallandspatient i VGR utan remiss (valfrihetsvård)")
BILAGA_1 = (VGR, "VGR-patient i Region Halland utan remiss (valfrihetsvård)")
HEARING = (SKANE, "Hörapparat till hallänning – betalningsförbindelse krävs")
DECISION_KEYS = set(Decision.model_fields)


@pytest.fixture(scope="module")
def single() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``decide -`` in-process, memoised: the single-case answer the batch path must match."""
    seen: dict[str, dict[str, Any]] = {}

    def decide(case: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(case, sort_keys=True)
        if key not in seen:
            result = in_process("decide", "-", stdin=json.dumps(case, ensure_ascii=False))
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
            seen[key] = json.loads(result.stdout)
        return seen[key]

    return decide


@pytest.mark.parametrize(("case", "expected"), PACK_CASES)
def test_decide_stdin_answers_the_contract(
    single: Callable[[dict[str, Any]], dict[str, Any]], case: dict[str, Any], expected: dict[str, Any]
) -> None:
    decision = single(case)
    assert set(decision) == DECISION_KEYS
    assert packtest.compare(decision, expected) == []
    if decision["rule_ids"]:
        assert decision["rule_id"] == decision["rule_ids"][0]
    # Every citation names the agreement by title and section and quotes the source word for word.
    for citation in decision["citations"]:
        match = CITATION.match(citation)
        assert match, citation
        assert match["title"] in SOURCES, citation
        assert norm(match["quote"]) in SOURCES[match["title"]], citation
        assert ".txt" not in match["title"]
    # A split cost names its parts in order; the payer is the first part's.
    if decision["shares"]:
        assert decision["payer"] == decision["shares"][0]["payer"]
    # incomplete exactly when who pays is open, and then the missing facts are named.
    payer_open = bool({"payer", "shares"} & set(decision["undetermined"]))
    assert payer_open == (decision["status"] == "incomplete"), decision
    if payer_open:
        assert decision["missing"], decision
    for name in decision["undetermined"]:
        assert decision[name] in (None, []), name
    # Data minimisation is ours and says so; only what an agreement forbids is "forbidden".
    if decision["invoice"]:
        assert "Personnummer" not in decision["invoice"]["forbidden_fields"]


# --------------------------------------------------------------------------------------------
# Real processes: bad input, --explain, batch, packs. Started together per module.
# --------------------------------------------------------------------------------------------

OK = '"date": "2025-03-10", "kind": "assistive_device"'
BAD_INPUT = {
    "malformed-json": ('{"date": "2025-03-10", "kind": ', ["ogiltig JSON", "rad 1"]),
    "unknown-region-99": (
        "{" + OK + ', "patient": {"home_region": "99"}}',
        ["patient.home_region", "99"],
    ),
    "municipality-not-in-home-region": (
        "{" + OK + ', "patient": {"home_region": "17", "home_municipality": "1380"}}',
        ["patient.home_region", "1380"],
    ),
    "negative-cost": ("{" + OK + ', "product": {"cost_sek": -5}}', ["product.cost_sek"]),
    "impossible-date": ('{"date": "2024-02-30", "kind": "assistive_device"}', ["date", "2024-02-30"]),
    "unknown-field": ("{" + OK + ', "patient": {"hoem_region": "17"}}', ["patient.hoem_region"]),
    "bool-as-string-false": (
        "{" + OK + ', "product": {"advanced_adaptation": "false"}}',
        ["product.advanced_adaptation"],
    ),
    "area-drug-for-assistive-device": ("{" + OK + ', "product": {"area": "drug"}}', ["product.area", "drug"]),
}
MORE_BAD_INPUT = {
    "region-as-number": ("{" + OK + ', "care": {"region": 12}}', ["care.region"]),
    "missing-date": ('{"kind": "assistive_device"}', ["date", "saknas"]),
    "not-an-object": ("[1, 2]", ["ärendet", "JSON-objekt"]),
    "age-over-130": ("{" + OK + ', "patient": {"age": 131}}', ["patient.age", "130"]),
    "country-not-iso": ("{" + OK + ', "patient": {"country": "XX"}}', ["patient.country", "XX"]),
    "unknown-kind": ('{"date": "2025-03-10", "kind": "drug"}', ["kind"]),
    "empty-stdin": ("", ["ogiltig JSON"]),
    "retired-listed": (
        '{"date": "2023-06-15", "kind": "medtech_product", "product": {"listed": true}}',
        ["product.listed", "product.annex"],
    ),
}


def _route_jsonl_row(name: str, i: int) -> dict[str, Any]:
    return {"id": i, **CASES[name]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every command line this module runs as a real process, started a few at a time."""
    tmp = tmp_path_factory.mktemp("cli")
    jobs: dict[str, Job] = {}

    # Bad single cases, on stdin and as a missing file.
    for name, (text, _) in BAD_INPUT.items():
        jobs[f"bad/{name}"] = (["decide", "-"], text)
    jobs["bad/missing-file"] = (["decide", str(tmp / "finns-inte.json")], None)

    # One route through a real process, to pin CliRunner to the real thing; and --explain.
    bilaga2 = case_named(*BILAGA_2)
    jobs["stdin/bilaga-2"] = (["decide", "-"], json.dumps(bilaga2))
    case_file = tmp / "bilaga2.json"
    case_file.write_text(json.dumps(bilaga2, ensure_ascii=False), encoding="utf-8")
    jobs["explain/bilaga-2"] = (["decide", str(case_file), "--explain"], None)

    # Batch: one run per format, all routes, with an id column.
    rows = [
        {"id": f"r{i:02d}-{name.split('/')[0]}", **flat(case)} for i, (name, case) in enumerate(CASES.items())
    ]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    csv_in = tmp / "in.csv"
    csv_in.write_text(_to_csv(rows, columns), encoding="utf-8")
    jsonl_in = tmp / "in.jsonl"
    jsonl_in.write_text(
        "".join(
            json.dumps(_route_jsonl_row(n, 100 + i), ensure_ascii=False) + "\n" for i, n in enumerate(CASES)
        ),
        encoding="utf-8",
    )
    parquet_in = tmp / "in.parquet"
    _to_frame(rows, columns).write_parquet(parquet_in)
    for fmt, source, target in (
        ("csv", csv_in, tmp / "out" / "decisions.csv"),
        ("jsonl", jsonl_in, tmp / "out" / "decisions.jsonl"),
        ("parquet", parquet_in, tmp / "out" / "decisions.parquet"),
    ):
        jobs[f"batch/{fmt}"] = (["decide", "--batch", str(source), "--out", str(target)], None)

    bad_row = tmp / "bad_row.csv"
    bad_row.write_text(
        "id,date,kind,patient.home_region,care.region\n"
        "x1,2025-03-10,assistive_device,17,12\n"
        "x2,2025-03-10,assistive_device,99,12\n"
        "x3,2025-03-10,assistive_device,13,12\n",
        encoding="utf-8",
    )
    jobs["batch/bad-row"] = (["decide", "--batch", str(bad_row), "--out", str(tmp / "bad_row_out.csv")], None)
    bad_col = tmp / "bad_col.csv"
    bad_col.write_text("date,kind,patient.hoem_region\n2025-03-10,assistive_device,17\n", encoding="utf-8")
    jobs["batch/unknown-column"] = (
        ["decide", "--batch", str(bad_col), "--out", str(tmp / "bad_col_out.csv")],
        None,
    )
    jobs["batch/no-out"] = (["decide", "--batch", str(csv_in)], None)

    # Packs: the bundled ones, and broken copies.
    jobs["packs/show-nope"] = (["packs", "show", "nope"], None)
    for name, edit in PACK_EDITS.items():
        root = tmp / "packs" / name
        copy_pack(root, edit)
        jobs[f"packs/copy/{name}"] = (["packs", "check", "--packs", str(root)], None)

    results: dict[str, Any] = dict(cli_many(jobs))
    results["tmp"] = tmp
    results["batch_rows"] = rows
    return results


def _to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    lines = [",".join(columns)]
    lines += [",".join(cell(r.get(c)) for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def _to_frame(rows: list[dict[str, Any]], columns: list[str]) -> pl.DataFrame:
    """Typed Parquet columns (booleans, floats, real dates), as a data warehouse would export them."""

    def typed(column: str) -> pl.Series:
        values = [r.get(column) for r in rows]
        present = [v for v in values if v is not None]
        if column == "date":
            return pl.Series(column, [dt.date.fromisoformat(v) for v in values], dtype=pl.Date)
        if present and all(isinstance(v, bool) for v in present):
            return pl.Series(column, values, dtype=pl.Boolean)
        if present and all(isinstance(v, int | float) for v in present):
            dtype = pl.Int64 if column in ("patient.age", "product.supply_days") else pl.Float64
            return pl.Series(column, values, dtype=dtype)
        return pl.Series(column, values, dtype=pl.String)

    return pl.DataFrame([typed(c) for c in columns])


# --- broken pack copies ------------------------------------------------------------------------


def _rename(folder: Path, new_id: str) -> None:
    meta = folder / "pack.yaml"
    text = meta.read_text(encoding="utf-8").replace(f"id: {VGR}", f"id: {new_id}", 1)
    # A copy that declares precedence over the bundled pack, so the two do not compete.
    text = text.replace("scope:\n", f"overrides: [{VGR}]\nscope:\n", 1)
    meta.write_text(text, encoding="utf-8")


def _edit_rules(folder: Path, old: str, new: str) -> None:
    path = folder / "rules.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _edit_meta(folder: Path, old: str, new: str) -> None:
    path = folder / "pack.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _delete_rule(folder: Path, rule_id: str) -> None:
    """Cut one rule (from its ``- id:`` line to the next rule's) out of rules.yaml."""
    path = folder / "rules.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"      - id: {rule_id}\n")
    end = text.index("      - id: ", start + 1)
    path.write_text(text[:start] + text[end:], encoding="utf-8")


PACK_EDITS: dict[str, Callable[[Path], None]] = {
    "unchanged": lambda f: None,
    "gap": lambda f: _delete_rule(f, "egen-region"),
    "bad-quote": lambda f: _edit_meta(
        f,
        'quote: "Den region där patienten är folkbokförd har kostnadsansvar för undantagshanteringen"',
        'quote: "Den region där patienten vårdas har kostnadsansvar för undantagshanteringen"',
    ),
    "bad-payer": lambda f: _edit_rules(f, 'payer: "region:13"', 'payer: "region:ABC"'),
    "unknown-field": lambda f: _edit_rules(
        f,
        'when: {patient.home_region: "13", care.region: "14", care.referral: true}',
        'when: {patient.home_region: "13", care.region: "14", care.reffer: true}',
    ),
    "same-scope": lambda f: _edit_meta(f, f"overrides: [{VGR}]\n", ""),
}


def copy_pack(root: Path, edit: Callable[[Path], None]) -> Path:
    name = "vgr_kopia"
    folder = root / name
    shutil.copytree(PACKS_DIR / VGR, folder)
    _rename(folder, name)
    edit(folder)
    return folder


def one_line_error(proc: Proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""
    return lines[0]


# --------------------------------------------------------------------------------------------
# 2. Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*BAD_INPUT, "missing-file"])
def test_bad_input_exits_2_with_one_line_naming_the_field(runs: dict[str, Any], name: str) -> None:
    line = one_line_error(runs[f"bad/{name}"])
    assert line.startswith("fel: "), line
    tokens = ["finns-inte.json", "kunde inte läsas"] if name == "missing-file" else BAD_INPUT[name][1]
    for token in tokens:
        assert token in line, (token, line)


@pytest.mark.parametrize("name", MORE_BAD_INPUT)
def test_more_bad_input_in_process(name: str) -> None:
    text, tokens = MORE_BAD_INPUT[name]
    result = in_process("decide", "-", stdin=text)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no exception escaped the command
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fel: "), result.stderr
    assert result.stdout == ""
    for token in tokens:
        assert token in lines[0], (token, lines[0])


def test_stdin_in_a_real_process_matches_cli_runner(
    runs: dict[str, Any], single: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    proc = runs["stdin/bilaga-2"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    decision = json.loads(proc.stdout)
    assert decision == single(case_named(*BILAGA_2))
    assert decision["invoice"]["recipient"]["reference"] == "ZZXXX098"


def test_decide_without_a_case_exits_2() -> None:
    result = in_process("decide")
    assert result.exit_code == 2
    assert "ange en ärendefil" in result.stderr


# --------------------------------------------------------------------------------------------
# 3. --explain
# --------------------------------------------------------------------------------------------


def _plain(text: str) -> str:
    return norm(re.sub(r"[│╭╮╰╯─]", " ", text))


def test_explain_prints_swedish_with_the_source_quoted(runs: dict[str, Any]) -> None:
    proc = runs["explain/bilaga-2"]
    assert proc.returncode == 0, proc.stderr
    text = _plain(proc.stdout)
    assert "Betalar (kostnadsansvar) Region Halland (region:13)" in text
    assert "Beslutar Västra Götalandsregionen (region:14)" in text
    assert "Källan säger" in text
    assert "«Beslut om undantagshantering tas inom Västra Götalandsregionen • Region Halland har" in text
    assert "Referens: ZZXXX098" in text and "Projektkod: 61165" in text
    assert "Behövs inte enligt avtalet (vembetalars dataminimering, inte avtalets ord): Personnummer" in text
    assert "Ska inte stå på fakturan" not in text
    assert not text.lstrip().startswith("{")


def test_explain_hearing_aid_says_what_comes_first(tmp_path: Path) -> None:
    case_file = tmp_path / "horsel.json"
    case_file.write_text(json.dumps(case_named(*HEARING)), encoding="utf-8")
    result = in_process("decide", str(case_file), "--explain")
    assert result.exit_code == 0, result.output
    text = _plain(result.stdout)
    assert "Betalningsförbindelse Krävs innan förskrivning" in text
    assert "Gör först: kontakta Region Halland" in text
    assert "«Det är förskrivarens ansvar att få godkännande från hemregionen." in text


# --------------------------------------------------------------------------------------------
# 4. Batch
# --------------------------------------------------------------------------------------------


def _batch_ok(runs: dict[str, Any], fmt: str) -> Path:
    proc = runs[f"batch/{fmt}"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{len(CASES)} ärenden" in proc.stderr
    suffix = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}[fmt]
    return runs["tmp"] / "out" / f"decisions.{suffix}"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batch_table_output_matches_single_decisions(
    runs: dict[str, Any], single: Callable[[dict[str, Any]], dict[str, Any]], fmt: str
) -> None:
    path = _batch_ok(runs, fmt)
    frame = pl.read_csv(path, infer_schema=False) if fmt == "csv" else pl.read_parquet(path)
    assert frame.height == len(CASES)
    assert frame.columns[0] == "id"
    assert frame.get_column("id").to_list() == [r["id"] for r in runs["batch_rows"]]
    for row, case in zip(frame.iter_rows(named=True), CASES.values(), strict=True):
        want = single(case)
        for column in ("status", "payer", "rule_id", "decider", "invoicer"):
            got = row[column] if row[column] != "" else None
            assert got == want[column], (row["id"], column, got, want[column])
        flag = row["prior_contact_required"]
        assert str(flag).lower() == str(want["prior_contact_required"]).lower(), row["id"]
        recipient = want["invoice"]["recipient"] if want["invoice"] else None
        reference = recipient["reference"] if recipient else None
        assert (row["invoice_reference"] or None) == reference, row["id"]


def test_batch_jsonl_output_is_full_decisions_with_id(
    runs: dict[str, Any], single: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    path = _batch_ok(runs, "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(CASES)
    for i, (line, case) in enumerate(zip(lines, CASES.values(), strict=True)):
        decision = json.loads(line)
        assert decision.pop("id") == 100 + i
        assert decision == single(case), i


def test_batch_stops_on_an_invalid_row_naming_row_and_field(runs: dict[str, Any]) -> None:
    proc = runs["batch/bad-row"]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "rad 2" in proc.stderr and "patient.home_region" in proc.stderr and "99" in proc.stderr
    assert "rad 1" not in proc.stderr and "rad 3" not in proc.stderr
    assert not (runs["tmp"] / "bad_row_out.csv").exists()


def test_batch_rejects_an_unknown_column(runs: dict[str, Any]) -> None:
    proc = runs["batch/unknown-column"]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "patient.hoem_region" in proc.stderr


def test_batch_without_out_exits_2(runs: dict[str, Any]) -> None:
    line = one_line_error(runs["batch/no-out"])
    assert "--out" in line


# --------------------------------------------------------------------------------------------
# 5. packs
# --------------------------------------------------------------------------------------------


def test_packs_list() -> None:
    result = in_process("packs", "list")
    assert result.exit_code == 0, result.output
    for pack_id in (VGR, SKANE, VARMLAND):
        assert pack_id in result.stdout
    assert "2021-01-01 – 2024-02-01" in result.stdout
    assert "2023-01-01 – 2026-12-31" in result.stdout


def test_packs_show_lists_rules_and_quotes() -> None:
    result = in_process("packs", "show", VGR)
    assert result.exit_code == 0, result.output
    text = norm(result.stdout)
    for rule_id in ("bilaga-1", "bilaga-2", "bilaga-3", "vgr-remitterad-till-halland", "nt-avradan"):
        assert f"{rule_id}:" in text
    assert (
        "«Beslut om undantagshantering tas inom Västra Götalandsregionen • Region Halland har kostnadsansvar"
        in text
    )
    assert (
        "hemregion (patient.home_region) = 13 och vårdregion (care.region) = 14"
        " och remiss (care.referral) = nej" in text
    )


def test_packs_test_and_check_pass_on_bundled_packs() -> None:
    tested = in_process("packs", "test")
    assert tested.exit_code == 0, tested.stdout
    for pack_id in (VGR, SKANE, VARMLAND):
        assert re.search(rf"ok {pack_id}: (\d+)/\1 testfall", tested.stdout), tested.stdout
    checked = in_process("packs", "check")
    assert checked.exit_code == 0, checked.stdout
    assert re.search(r"3 paket, \d+ regler: 0 fel, 0 varningar", checked.stdout), checked.stdout


def test_packs_show_unknown_pack_exits_2(runs: dict[str, Any]) -> None:
    line = one_line_error(runs["packs/show-nope"])
    assert "'nope'" in line and "okänt regelpaket" in line


def test_pack_copy_with_declared_precedence_is_clean(runs: dict[str, Any]) -> None:
    proc = runs["packs/copy/unchanged"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"4 paket, \d+ regler: 0 fel", proc.stdout), proc.stdout


def test_pack_check_finds_a_gap(runs: dict[str, Any]) -> None:
    proc = runs["packs/copy/gap"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    gaps = [line for line in proc.stdout.splitlines() if "lucka" in line]
    assert gaps and all("vgr_kopia" in line for line in gaps), proc.stdout
    assert any("patient.home_region=13" in line and "care.region=13" in line for line in gaps), gaps


def test_pack_check_finds_a_quote_not_in_the_source(runs: dict[str, Any]) -> None:
    proc = runs["packs/copy/bad-quote"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [line for line in proc.stdout.splitlines() if line.startswith("error")]
    assert len(findings) == 1, proc.stdout
    assert "citering" in findings[0] and "'princip-kostnad'" in findings[0] and "vgr_kopia" in findings[0]


def test_pack_check_finds_competing_agreements(runs: dict[str, Any]) -> None:
    proc = runs["packs/copy/same-scope"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "konkurrerande avtal" in proc.stdout
    assert VGR in proc.stdout and "vgr_kopia" in proc.stdout


@pytest.mark.parametrize(
    ("name", "rule", "field"),
    [
        pytest.param("bad-payer", "bilaga-2", "then.payer", id="payer-region-ABC"),
        pytest.param("unknown-field", "bilaga-3", "care.reffer", id="unknown-condition-field"),
    ],
)
def test_malformed_pack_exits_2_naming_file_rule_and_field(
    runs: dict[str, Any], name: str, rule: str, field: str
) -> None:
    line = one_line_error(runs[f"packs/copy/{name}"])
    assert "rules.yaml" in line and f"regel '{rule}'" in line and field in line, line


# --------------------------------------------------------------------------------------------
# Bugs found while writing these tests, now fixed: they stay as regression tests.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bug_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """In-process, so that an escaping exception shows up as ``result.exception``."""
    tmp = tmp_path_factory.mktemp("bugs")
    empty = tmp / "empty.csv"
    empty.write_text("id,date,kind\n", encoding="utf-8")
    listed = tmp / "list.jsonl"
    listed.write_text(
        '{"date": "2024-05-01", "kind": "drug_exception", "product": {"area": ["drug"]}}\n', encoding="utf-8"
    )
    lenient = tmp / "lenient.jsonl"
    case = merge(case_named(*BILAGA_1), {"care": {"referral": "false"}})
    lenient.write_text(json.dumps(case) + "\n", encoding="utf-8")
    retired = tmp / "retired.csv"
    retired.write_text("date,kind,product.listed\n2023-06-15,medtech_product,true\n", encoding="utf-8")
    assert in_process("decide", "-", stdin=json.dumps(case)).exit_code == 2  # the single path rejects it
    return {
        "empty-jsonl": in_process("decide", "--batch", str(empty), "--out", str(tmp / "empty.jsonl")),
        "list-value": in_process("decide", "--batch", str(listed), "--out", str(tmp / "list.csv")),
        "lenient": in_process("decide", "--batch", str(lenient), "--out", str(tmp / "lenient.csv")),
        "retired": in_process("decide", "--batch", str(retired), "--out", str(tmp / "retired_out.csv")),
    }


def test_empty_batch_to_jsonl_writes_an_empty_file(bug_runs: dict[str, Any]) -> None:
    result = bug_runs["empty-jsonl"]
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0


def test_batch_list_value_is_rejected_cleanly(bug_runs: dict[str, Any]) -> None:
    result = bug_runs["list-value"]
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2
    assert "rad 1" in result.stderr and "product.area" in result.stderr


def test_batch_jsonl_is_as_strict_as_single_case(bug_runs: dict[str, Any]) -> None:
    result = bug_runs["lenient"]
    assert result.exit_code == 2, result.stderr
    assert "care.referral" in result.stderr


def test_batch_with_the_retired_listed_column_names_annex(bug_runs: dict[str, Any]) -> None:
    result = bug_runs["retired"]
    assert result.exit_code == 2, result.stderr
    assert "product.listed" in result.stderr and "product.annex" in result.stderr


# --------------------------------------------------------------------------------------------
# Amounts in a batch: checked per column as a single case checks them (model/money.py).
# --------------------------------------------------------------------------------------------


def _error_line(result: Any) -> str:
    """The one error line of an in-process run (after the progress line a terminal would overwrite)."""
    assert "Traceback" not in result.stderr
    line: str = result.stderr.strip().splitlines()[-1]
    assert line.startswith("fel: "), result.stderr
    return line


def test_batch_refuses_bad_amounts_naming_row_and_field(tmp_path: Path) -> None:
    source = tmp_path / "costs.csv"
    rows = ["12000", "inf", "nan", "1e30", "-1", "10000000000", "-inf", '"12,50"']
    source.write_text(
        "date,kind,product.cost_sek\n" + "".join(f"2025-09-15,assistive_device,{r}\n" for r in rows),
        encoding="utf-8",
    )
    result = in_process("decide", "--batch", str(source), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code == 2, result.stderr
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    line = _error_line(result)
    for expected in [
        "rad 2: product.cost_sek: 'inf' ska vara ett ändligt tal",
        "rad 3: product.cost_sek: 'nan' ska vara ett ändligt tal",
        "rad 4: product.cost_sek: '1e30' är för stort (högst 9 999 999 999,99 kr)",
        "rad 5: product.cost_sek: '-1' får inte vara negativt",
        "rad 6: product.cost_sek: '10000000000' är för stort",
        "(och 2 rader till)",
    ]:
        assert expected in line, line
    assert "rad 1:" not in line
    assert not (tmp_path / "out.csv").exists()


def test_batch_refuses_non_finite_amounts_in_json_lines(tmp_path: Path) -> None:
    ok = '{"date": "2025-09-15", "kind": "assistive_device", "product": {"cost_sek": 12000}}\n'
    for name, value in [("inf", "1e999"), ("huge", "1" + "0" * 400), ("negative", "-0.01")]:
        source = tmp_path / f"{name}.jsonl"
        source.write_text(ok + ok.replace("12000", value), encoding="utf-8")
        result = in_process("decide", "--batch", str(source), "--out", str(tmp_path / f"{name}.csv"))
        assert result.exit_code == 2, (name, result.stderr)
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        line = _error_line(result)
        # Polars itself refuses numbers beyond a float or an int64 while reading: the file is named.
        assert "product.cost_sek" in line or "kunde inte läsas" in line, line
        if name == "negative":
            assert "rad 2: product.cost_sek: '-0.01' får inte vara negativt" in line, line


def test_batch_rounds_amounts_to_ore_as_a_single_case_does(
    tmp_path: Path, single: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """9 999.995 kr is 10 000 kr in both paths (half up, as the number reads); 12.345 is 12.35."""
    base = {
        "date": "2025-09-15",
        "kind": "assistive_device",
        "patient": {"home_region": "13"},
        "care": {"region": "12"},
        "product": {"area": "mobility", "advanced_adaptation": False},
    }
    costs = ["9999.995", "9999.994999999999", "10000", "0.5700000000000001", "12.345"]
    source = tmp_path / "costs.csv"
    header = ",".join(flat(base)) + ",product.cost_sek\n"
    values = ",".join(str(v).lower() for v in flat(base).values())
    source.write_text(header + "".join(f"{values},{c}\n" for c in costs), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = in_process("decide", "--batch", str(source), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    decided = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = [single(merge(base, {"product": {"cost_sek": json.loads(c)}})) for c in costs]
    assert decided == expected
    assert decided[0]["rule_id"] == decided[2]["rule_id"] != decided[1]["rule_id"]


def test_packs_check_tells_the_maintainers_when_an_agreement_ends_soon() -> None:
    """VGR–Halland ends 2026-12-31: 34 days before, the check says so (and still passes)."""
    soon = CliRunner().invoke(
        app,
        ["packs", "check"],
        env={"VEMBETALAR_PACKS": None, "COLUMNS": "400", "VEMBETALAR_TODAY": "2026-11-27"},
    )
    assert soon.exit_code == 0, soon.stdout
    assert f"obs {VGR}: avtalet upphör 2026-12-31 (om 34 dagar)" in soon.stdout
    early = CliRunner().invoke(
        app,
        ["packs", "check"],
        env={"VEMBETALAR_PACKS": None, "COLUMNS": "400", "VEMBETALAR_TODAY": "2026-09-01"},
    )
    assert early.exit_code == 0 and "upphör" not in early.stdout
