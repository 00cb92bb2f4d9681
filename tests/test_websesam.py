"""Reconciling webSesam's invoice export with the events the invoice run lists as billed by
webSesam (Region Skåne's devices): each kind on a hand-made export, the column mapping, every
refusal of a bad file, the command's exit codes, and the clerk's page (its own organisation only)."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_api import API, create, take
from test_billing_run import registry, run
from test_cli_invoice import cli
from test_handoffs import DELIVERY_LINE, INCONTINENCE
from test_handoffs import REQUEST as SESAM_REQUEST
from test_invoice_pages import add_user, signed_in
from webapp import TestApp as Desk

from vembetalar.handoffs import websesam
from vembetalar.handoffs.websesam import BadExport, ElsewhereEvent, read_export, reconcile, result_csv
from vembetalar.handoffs.websesam_mapping import BadMapping, load_mapping, mapping_from
from vembetalar.rules.engine import Engine
from vembetalar.store.db import make_engine, migrate, session_factory
from vembetalar.store.models import AuditEntry
from vembetalar.web import demo

DEFAULT = load_mapping()
PNR = "19121212-1212"
HEADER = (
    "Fakturanummer;Fakturadatum;Kund;Personnummer;Leveransdatum;Artikelnummer;Artikelbenämning;Antal;Belopp"
)

#: One row of each kind (line numbers in the file are 2…7), as a Swedish Excel export writes it.
EXPORT = f"""\ufeff{HEADER}
W1;2024-05-31;Region Halland;{PNR};2024-05-13;;Rollator;1;3 000,00
W1;2024-05-31;Region Värmland;{PNR};2024-05-22;;Hörapparat;1;7 450,00
W2;2024-05-31;13;;2024-05-08;;Rullstol;1;5 400,00
W3;2024-05-31;region:13;;2024-05-08;; rullstol ;1;5400
W3;2024-05-31;Halland;;2024-05-15;;Duschpall {PNR};1;890,00
W3;2024-05-31;Västra Götalandsregionen;;2024-05-20;123456;Läkemedel X;2;"1 840,50"
"""


def event(
    event_id: int,
    day: str,
    recipient: str,
    product: str,
    quantity: str,
    amount: str,
    varunummer: str | None = None,
) -> ElsewhereEvent:
    return ElsewhereEvent(
        event_id=event_id,
        case_reference=f"VB-2024-{event_id:08d}",
        occurred_on=dt.date.fromisoformat(day),
        recipient=recipient,
        product_name=product,
        varunummer=varunummer,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
    )


EVENTS = [
    event(1, "2024-05-13", "region:13", "Rollator", "1.000", "3000.00"),
    event(2, "2024-05-22", "region:17", "Hörapparat", "1.000", "7200.00"),
    event(3, "2024-05-08", "region:13", "Rullstol", "1.000", "5400.00"),
    event(4, "2024-05-27", "region:13", "Rullstolsdyna", "2.000", "1200.00"),
    # The varunummer matches the article number although the names differ.
    event(5, "2024-05-20", "region:14", "Testoprazol 20 mg", "2.000", "1840.50", varunummer="123456"),
]


def reconciled(text: str = EXPORT, events: list[ElsewhereEvent] = EVENTS, mapping: Any = DEFAULT) -> Any:
    return reconcile(events, read_export(text.encode("utf-8"), mapping), issuer="region:12", period="2024-05")


def totals(result: websesam.Reconciliation) -> dict[str, tuple[int, str, str, str]]:
    return {
        t.kind: (t.count, f"{t.expected:.2f}", f"{t.billed:.2f}", f"{t.difference:.2f}")
        for t in result.totals
    }


# ---------------------------------------------------------------- the kinds


def test_a_hand_made_export_gives_each_kind_with_exact_counts_and_amounts() -> None:
    result = reconciled()
    assert totals(result) == {
        "matchad": (2, "4840.50", "4840.50", "0.00"),
        "belopp skiljer": (1, "7200.00", "7450.00", "250.00"),
        "fakturerad två gånger": (1, "5400.00", "10800.00", "5400.00"),
        "saknas i webSesam": (1, "1200.00", "0.00", "-1200.00"),
        "finns bara i webSesam": (1, "0.00", "890.00", "890.00"),
    }
    found = {
        (line.kind, line.event.event_id if line.event else None, tuple(r.line for r in line.rows))
        for line in result.lines
    }
    assert found == {
        ("matchad", 1, (2,)),
        ("matchad", 5, (7,)),
        ("belopp skiljer", 2, (3,)),
        ("fakturerad två gånger", 3, (4, 5)),
        ("saknas i webSesam", 4, ()),
        ("finns bara i webSesam", None, (6,)),
    }
    assert result.has_differences and result.warnings == []
    (only,) = result.of_kind("finns bara i webSesam")
    assert only.recipient == "region:13" and only.article == "Duschpall [dolt]"


def test_everything_matched_has_no_differences() -> None:
    lines = EXPORT.splitlines()
    result = reconciled("\n".join([lines[0], lines[1], lines[6]]), [EVENTS[0], EVENTS[4]])
    assert not result.has_differences and [line.kind for line in result.lines] == ["matchad", "matchad"]


def test_ties_resolve_the_same_way_every_time() -> None:
    """Two identical events (two patients, same day, same device): rows are paired in file order,
    an extra row bills the earliest event twice, a missing one leaves the later event missing."""
    twins = [
        event(8, "2024-05-13", "region:13", "Rollator", "1", "3000.00"),
        event(7, "2024-05-13", "region:13", "Rollator", "1", "3000.00"),
    ]
    row = "W1;2024-05-31;Region Halland;;2024-05-13;;Rollator;1;3 000,00"
    three = reconciled("\n".join([HEADER, row, row, row]), twins)
    assert [(line.kind, line.event.event_id if line.event else None) for line in three.lines] == [
        ("fakturerad två gånger", 7),
        ("matchad", 8),
    ]
    assert [r.line for r in three.of_kind("fakturerad två gånger")[0].rows] == [2, 4]
    one = reconciled("\n".join([HEADER, row]), twins)
    assert [(line.kind, line.event.event_id if line.event else None) for line in one.lines] == [
        ("saknas i webSesam", 8),
        ("matchad", 7),
    ]
    # The same amount wins a tie: the row at 3 000 goes to the event of 3 000, not the first one.
    priced = [
        event(1, "2024-05-13", "region:13", "Rollator", "1", "2500.00"),
        event(2, "2024-05-13", "region:13", "Rollator", "1", "3000.00"),
    ]
    result = reconciled("\n".join([HEADER, row]), priced)
    assert {(line.kind, line.event.event_id if line.event else None) for line in result.lines} == {
        ("saknas i webSesam", 1),
        ("matchad", 2),
    }


def test_a_credit_row_takes_back_its_debit_and_rows_of_other_months_are_set_aside() -> None:
    text = "\n".join(
        [
            HEADER,
            "W1;2024-05-31;Region Halland;;2024-05-13;;Rollator;1;3 000,00",
            "W1;2024-05-31;Region Halland;;2024-05-13;;Rollator;1;3 000,00",
            "K1;2024-05-31;Region Halland;;2024-05-13;;Rollator;-1;−3 000,00",
            "W1;2024-05-31;Region Halland;;2024-04-30;;Rollator;1;3 000,00",
            "W1;2024-05-31;Kundnr 4711;;2024-05-13;;Rollator;1;3 000,00",
        ]
    )
    result = reconciled(text, [EVENTS[0]])
    assert [(line.kind, [r.line for r in line.rows]) for line in result.lines] == [
        ("finns bara i webSesam", [6]),
        ("matchad", [3]),
    ]
    assert any("rad 4 krediterar rad 2" in w for w in result.warnings)
    assert any("1 rad gäller leveranser utanför 2024-05 (rad 5)" in w for w in result.warnings)
    assert any("«Kundnr 4711» (rad 6) känns inte igen" in w for w in result.warnings)


def test_result_csv_opens_in_swedish_excel_and_never_carries_a_personnummer() -> None:
    data = result_csv(reconciled())
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    header, *rows = text.split("\r\n")[:-1]
    assert header.split(";")[:4] == ["Resultat", "Ärende", "Hemregion", "Datum"]
    assert len(rows) == 6
    missing = next(r for r in rows if r.startswith("saknas i webSesam")).split(";")
    assert missing[7:10] == ["1200,00", "", "-1200,00"]  # a negative number stays a number
    twice = next(r for r in rows if r.startswith("fakturerad två gånger")).split(";")
    assert twice[1:4] == ["VB-2024-00000003", "Region Halland", "2024-05-08"]
    assert twice[8:12] == ["10800,00", "5400,00", "W2, W3", "4, 5"]
    assert PNR not in text and "191212121212" not in text


def test_formula_like_text_from_the_file_is_neutralised_in_the_csv() -> None:
    text = f"{HEADER}\nW1;2024-05-31;Region Halland;;2024-05-15;;=HYPERLINK(1);1;10"
    rows = result_csv(reconciled(text, [])).decode("utf-8-sig").split("\r\n")
    assert ";'=HYPERLINK(1);" in rows[1]


# ---------------------------------------------------------------- the mapping


def test_the_mapping_is_configurable_renamed_columns_comma_and_customer_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mappning.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            delimiter: ","
            date_formats: ["%d/%m/%Y"]
            columns:
              invoice_number: {headers: [InvoiceNo], required: true}
              customer: {headers: [CustomerNo], required: true}
              delivery_date: {headers: [Delivered], required: true}
              article_name: [Item]
              quantity: {headers: [Qty], required: true}
              amount: {headers: [Amount], required: true}
            customers:
              "K-1013": region:13
            """
        ),
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    export = 'InvoiceNo,CustomerNo,Delivered,Item,Qty,Amount\nW1,K-1013,13/05/2024,Rollator,1,"3 000,00"\n'
    result = reconciled(export, [EVENTS[0]], mapping)
    assert [line.kind for line in result.lines] == ["matchad"]
    with pytest.raises(BadExport, match="«InvoiceNo»"):
        read_export(EXPORT.encode(), mapping)


def test_the_default_mapping_also_takes_a_comma_separated_file_without_bom() -> None:
    export = (
        "Fakturanummer,Kund,Leveransdatum,Artikelbenämning,Antal,Belopp\n"
        'W1,Region Halland,2024-05-13,Rollator,1,"3 000,00"\n'
    )
    assert [line.kind for line in reconciled(export, [EVENTS[0]]).lines] == ["matchad"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": {"amount": "Belopp"}}, "columns.customer saknas"),
        ({"columns": {**{k: "X" for k in ("customer", "delivery_date", "quantity", "amount")}}}, "article_"),
        ({"columns": {"colour": "Färg"}}, "okänt fält 'colour'"),
        ({"delimiter": "|", "columns": {}}, "delimiter"),
        ({"encoding": "klingon", "columns": {}}, "okänd teckenkodning"),
        ({"customers": {"1": "Halland"}, "columns": {}}, "customers.1"),
        ("bara text", "columns"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_key(data: Any, message: str) -> None:
    if isinstance(data, dict) and data.get("columns") == {}:
        data["columns"] = {
            k: "X" for k in ("customer", "delivery_date", "quantity", "amount", "article_name")
        }
    with pytest.raises(BadMapping, match=re.escape(message)):
        mapping_from(data)


def test_a_mapping_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trasig.yaml"
    path.write_text("columns: [\n", encoding="utf-8")
    with pytest.raises(BadMapping, match="inte giltig YAML"):
        load_mapping(path)


# ---------------------------------------------------------------- bad files


ROW = "W1;2024-05-31;Region Halland;{pnr};2024-05-13;;Rollator;{qty};{amount}"


def _file(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode("utf-8")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Filen är tom."),
        ("\ufeff\r\n \r\n".encode(), "Filen är tom."),
        (HEADER.encode(), "inga fakturarader"),
        (
            "Fakturanummer;Kund;Leveransdatum;Artikelbenämning\nW1;13;2024-05-13;Rollator".encode(),
            "Kolumner saknas i filen: «Antal» eller «Kvantitet»; «Belopp» eller",
        ),
        (_file(ROW.format(pnr="", qty="1", amount="tre tusen")), "rad 2: «Belopp» är inte ett tal"),
        (_file(ROW.format(pnr="", qty="1", amount="NaN")), "rad 2: «Belopp» är inte ett tal"),
        (_file(ROW.format(pnr="", qty="inf", amount="1")), "rad 2: «Antal» är inte ett tal"),
        (
            _file(ROW.format(pnr="", qty="1", amount="1,005")),
            "rad 2: «Belopp» är tvetydigt: skriv 1 005 kr för tusental",
        ),
        (_file(ROW.format(pnr="", qty="1", amount="")), "rad 2: «Belopp» saknas"),
        (
            _file("W1;2024-05-31;Region Halland;;13/05/2024;;Rollator;1;3000"),
            "rad 2: «Leveransdatum» är inte ett datum",
        ),
        (_file("W1;2024-05-31;;;2024-05-13;;Rollator;1;3000"), "rad 2: «Kund» saknas"),
        (_file(";2024-05-31;13;;2024-05-13;;Rollator;1;3000"), "rad 2: «Fakturanummer» saknas"),
        (
            _file(ROW.format(pnr="", qty="1", amount="x"), ROW.format(pnr="", qty="y", amount="1")),
            "rad 2: «Belopp» är inte ett tal (skriv t.ex. 12 000,50 kr); rad 3: «Antal»",
        ),
        (
            f"{HEADER}\nW1;2024-05-31;Region Värmland;;2024-05-13;;Hörapparat;1;7 200,00".encode("cp1252"),
            "UTF-8",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binära data"),
        (b"x" * (websesam.MAX_EXPORT_BYTES + 1), "Filen är för stor (högst 5 MB)."),
    ],
)
def test_a_bad_export_gets_one_swedish_sentence(data: bytes, message: str) -> None:
    with pytest.raises(BadExport) as refused:
        read_export(data, DEFAULT)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)


def test_a_bad_cell_is_named_by_row_and_column_never_by_its_value() -> None:
    """A mapping that points the amount at the personnummer column: the error says where, not what."""
    mapping = mapping_from(
        {
            "columns": {
                "customer": "Kund",
                "delivery_date": "Leveransdatum",
                "article_name": "Artikelbenämning",
                "quantity": "Antal",
                "amount": "Personnummer",
            }
        }
    )
    with pytest.raises(BadExport) as refused:
        read_export(_file(ROW.format(pnr=PNR, qty="1", amount="1")), mapping)
    assert "rad 2: «Personnummer»" in str(refused.value)
    assert PNR not in str(refused.value) and "1212" not in str(refused.value)


# ---------------------------------------------------------------- on the desk: events, command, page

PERIOD = "2025-09"
ROLLATOR = {
    "date": "2025-09-01",
    "kind": "assistive_device",
    "patient": {"home_region": "13", "country": "SE"},
    "care": {"region": "12"},
    "product": {"area": "mobility", "cost_sek": 3000, "advanced_adaptation": False},
}
WHEELCHAIR = {**ROLLATOR, "patient": {"home_region": "17", "country": "SE"}}


def _line(day: str, product: str, quantity: str, price: str) -> dict[str, str]:
    return {"occurred_on": day, "quantity": quantity, "unit_price_sek": price, "product_name": product}


def skane_events(desk: Desk) -> list[str]:
    """Four Skåne deliveries in September 2025 that webSesam bills; their case references."""
    skane = desk.api("hjalpmedel.skane")
    first = create(skane, ROLLATOR, patient_id="19811228-9874")
    take(skane, first["id"], "delivered", line=_line("2025-09-02", "Rollator", "1", "3000"))
    take(skane, first["id"], "delivered", line=_line("2025-09-04", "Rollatorkorg", "2", "150"))
    second = create(skane, WHEELCHAIR)
    take(skane, second["id"], "delivered", line=_line("2025-09-03", "Rullstol", "1", "5400"))
    take(skane, second["id"], "delivered", line=_line("2025-09-05", "Ryggstöd", "1", "800"))
    return [first["reference"], second["reference"]]


#: Rollator matched, the basket billed twice, the wheelchair at another amount, the back rest
#: missing, a shower stool only in webSesam; a personnummer column the result never shows.
DESK_EXPORT = f"""{HEADER}
5001;2025-09-30;Region Halland;19811228-9874;2025-09-02;;Rollator;1;3 000,00
5001;2025-09-30;Region Halland;19811228-9874;2025-09-04;;Rollatorkorg;2;300,00
5002;2025-09-30;Region Halland;19811228-9874;2025-09-04;;Rollatorkorg;2;300,00
5003;2025-09-30;Region Värmland;;2025-09-03;;Rullstol;1;5 600,00
5003;2025-09-30;Region Värmland;;2025-09-10;;Duschpall;1;890,00
""".encode()
MATCHING_EXPORT = f"""{HEADER}
5001;2025-09-30;Region Halland;;2025-09-02;;Rollator;1;3 000,00
5001;2025-09-30;Region Halland;;2025-09-04;;Rollatorkorg;2;300,00
5003;2025-09-30;Region Värmland;;2025-09-03;;Rullstol;1;5 400,00
5003;2025-09-30;Region Värmland;;2025-09-05;;Ryggstöd;1;800,00
""".encode()

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only  # the run's own query, which test_billing_run runs on PostgreSQL too
def test_the_events_are_those_the_run_lists_as_billed_by_websesam(desk: Desk) -> None:
    skane_events(desk)
    with desk.app.state.sessions() as db:
        events = websesam.elsewhere_events(db, desk.app.state.engine, issuer="region:12", period=PERIOD)
        assert (
            websesam.elsewhere_events(db, desk.app.state.engine, issuer="region:12", period="2025-08") == []
        )
    registry(desk)  # the reconciliation needs none (nothing is invoiced); the run does
    report = run(desk, "region:12")
    assert sorted(e.event_id for e in events) == sorted(p.event_id for p in report.billed_elsewhere)
    assert [(str(e.occurred_on), e.recipient, e.product_name, str(e.amount)) for e in events] == [
        ("2025-09-02", "region:13", "Rollator", "3000.00"),
        ("2025-09-03", "region:17", "Rullstol", "5400.00"),
        ("2025-09-04", "region:13", "Rollatorkorg", "300.00"),
        ("2025-09-05", "region:17", "Ryggstöd", "800.00"),
    ]


@sqlite_only
def test_sesam_lmn_deliveries_are_billed_by_vo_hjalpmedel_and_kept_out_of_the_websesam_check(
    desk: Desk,
) -> None:
    """Seed 001: diabetes, incontinence and nutrition go through Sesam LMN, where VO Hjälpmedel
    bills ("i samband med fakturering"); only webSesam's own events are reconciled with webSesam."""
    skane_events(desk)
    skane = desk.api("hjalpmedel.skane")
    incontinence = create(skane, INCONTINENCE, patient_id="19121212-1212")
    request = {"delivery": "pdf", **SESAM_REQUEST}
    assert skane.post(f"{API}/cases/{incontinence['id']}/sesam-request", json=request).status_code == 200
    take(skane, incontinence["id"], "cleared", note="Klartecken per telefon")
    take(skane, incontinence["id"], "delivered", line=DELIVERY_LINE)
    registry(desk)
    report = run(desk, "region:12")
    assert report.invoices == []
    systems = {p.case_reference: p.reason for p in report.billed_elsewhere}
    assert systems[incontinence["reference"]].startswith("faktureras av VO Hjälpmedel (Sesam LMN)")
    assert sum("Visma webSesam" in why for why in systems.values()) == 2  # the rollator and the wheelchair
    with desk.app.state.sessions() as db:
        events = websesam.elsewhere_events(db, desk.app.state.engine, issuer="region:12", period=PERIOD)
    assert "Inkontinensskydd" not in {e.product_name for e in events} and len(events) == 4


@sqlite_only
def test_the_command_exits_0_when_all_match_3_on_differences_2_on_bad_input(
    desk: Desk, tmp_path: Path
) -> None:
    skane_events(desk)
    good, differing, bad = tmp_path / "ok.csv", tmp_path / "diff.csv", tmp_path / "bad.csv"
    good.write_bytes(MATCHING_EXPORT)
    differing.write_bytes(DESK_EXPORT)
    bad.write_bytes(b"Fakturanummer;Kund\n1;2\n")
    args = ("--issuer", "region:12", "--period", PERIOD)

    matched = cli(desk, "reconcile-websesam", str(good), *args)
    assert matched.exit_code == 0, matched.output
    assert "Allt stämmer" in matched.output

    out = tmp_path / "resultat.csv"
    found = cli(desk, "reconcile-websesam", str(differing), *args, "--out", str(out))
    assert found.exit_code == 3, found.output
    assert "belopp skiljer" in found.output and "19811228" not in found.output
    rows = out.read_bytes().decode("utf-8-sig").split("\r\n")
    assert sorted(r.split(";")[0] for r in rows[1:-1]) == [
        "belopp skiljer",
        "fakturerad två gånger",
        "finns bara i webSesam",
        "matchad",
        "saknas i webSesam",
    ]

    for given, message in [
        ((str(bad), *args), "Kolumner saknas i filen"),
        ((str(tmp_path / "finns-inte.csv"), *args), "kan inte läsas"),
        ((str(good), "--issuer", "region:12", "--period", "2025-13"), "ÅÅÅÅ-MM"),
        ((str(good), *args, "--mapping", str(bad)), "kolumnmappningen"),
    ]:
        refused = cli(desk, "reconcile-websesam", *given)
        assert refused.exit_code == 2, refused.output
        assert message in refused.output and "Traceback" not in refused.output


def _upload(client: Any, data: bytes, period: str = PERIOD) -> Any:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/invoices/websesam").text)
    assert token
    return client.post(
        "/invoices/websesam",
        data={"csrf": token.group(1), "period": period},
        files={"file": ("webSesam september.csv", data, "text/csv")},
    )


def _download(client: Any, page: str) -> Any:
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    carried = re.search(r'name="result" value="([^"]+)"', page)
    assert csrf and carried
    return client.post(
        "/invoices/websesam/resultat.csv", data={"csrf": csrf.group(1), "result": carried.group(1)}
    )


@sqlite_only
def test_the_clerk_sees_each_kind_with_counts_and_sums_and_downloads_the_csv(desk: Desk) -> None:
    references = skane_events(desk)
    add_user(desk, "faktura.skane", "invoice_clerk", "region:12")
    clerk = signed_in(desk, "faktura.skane")
    assert 'href="/invoices/websesam"' in clerk.get("/invoices").text

    shown = _upload(clerk, DESK_EXPORT)
    assert shown.status_code == 200, shown.text
    page = shown.text
    assert "Det finns skillnader" in page
    for kind, count in [
        ("Matchad", 1),
        ("Fakturerad två gånger", 1),
        ("Belopp skiljer", 1),
        ("Saknas i webSesam", 1),
        ("Finns bara i webSesam", 1),
    ]:
        assert f"{kind} ({count})" in page
    assert "5\u00a0600,00" in page and "200,00" in page  # both amounts and the difference
    assert references[0] in page and references[1] in page
    assert "19811228" not in page and "9874" not in page

    download = _download(clerk, page)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="webSesam-avstamning-2025-09.csv"' in download.headers["content-disposition"]
    text = download.content.decode("utf-8-sig")
    assert text.count("\r\n") == 6 and "5600,00;200,00" in text and "9874" not in text

    with desk.app.state.sessions() as db:
        audited = db.execute(
            select(AuditEntry.action, AuditEntry.detail).where(AuditEntry.action.like("websesam.%"))
        ).all()
    assert [action for action, _ in audited] == ["websesam.reconcile", "websesam.export"]
    assert all("1 matchad" in (detail or "") and "9874" not in (detail or "") for _, detail in audited)

    matching = _upload(clerk, MATCHING_EXPORT)
    assert "Allt stämmer" in matching.text


@sqlite_only
def test_bad_files_are_refused_on_the_page_with_a_sentence(desk: Desk) -> None:
    add_user(desk, "faktura.skane", "invoice_clerk", "region:12")
    clerk = signed_in(desk, "faktura.skane")
    empty = _upload(clerk, b"")
    assert empty.status_code == 422 and "Filen är tom." in empty.text
    columns = _upload(clerk, b"Fakturanummer;Kund\n1;2\n")
    assert columns.status_code == 422 and "Kolumner saknas" in columns.text
    period = _upload(clerk, MATCHING_EXPORT, period="september")
    assert period.status_code == 422 and "ÅÅÅÅ-MM" in period.text
    no_csrf = clerk.post("/invoices/websesam", data={"period": PERIOD}, files={"file": ("a.csv", b"x")})
    assert no_csrf.status_code == 403
    tampered = clerk.post(
        "/invoices/websesam/resultat.csv",
        data={
            "csrf": re.findall(r'name="csrf" value="([^"]+)"', clerk.get("/invoices/websesam").text)[0],
            "result": "x.y.z",
        },
    )
    assert tampered.status_code == 422 and "läs in filen igen" in tampered.text


@sqlite_only
def test_another_organisation_cannot_see_region_12s_reconciliation(desk: Desk) -> None:
    references = skane_events(desk)
    add_user(desk, "faktura.skane", "invoice_clerk", "region:12")
    page = _upload(signed_in(desk, "faktura.skane"), DESK_EXPORT).text

    halland = signed_in(desk, "faktura.halland")
    # The signed result of region:12, posted by Halland's clerk: refused.
    assert _download(halland, page).status_code == 403
    # Halland's own upload of the same file reconciles Halland's events (none), never Skåne's.
    own = _upload(halland, DESK_EXPORT)
    assert own.status_code == 200
    assert references[0] not in own.text and references[1] not in own.text
    assert "Finns bara i webSesam (5)" in own.text and "Matchad (0)" in own.text
    # A prescriber of region:12 is no invoice clerk.
    assert signed_in(desk, "hjalpmedel.skane").get("/invoices/websesam").status_code == 403


def test_the_demo_export_shows_one_finding_of_each_kind(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run`'s Skåne cases of May 2024 and vembetalar/demo/websesam_2024-05.csv."""
    monkeypatch.setattr(demo, "hash_password", lambda password: "ingen inloggning i testet")
    db_engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate(db_engine)
    export = Path(demo.__file__).parents[1] / "demo" / "websesam_2024-05.csv"
    with session_factory(db_engine)() as db:
        demo.load(db, engine, dt.date(2026, 11, 27))
        result = websesam.reconcile_export(
            db, engine, issuer="region:12", period="2024-05", data=export.read_bytes(), mapping=DEFAULT
        )
    db_engine.dispose()
    assert [(t.kind, t.count) for t in result.totals] == [(kind, 1) for kind in websesam.KINDS]
    assert result.warnings == []
