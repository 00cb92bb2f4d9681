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
    """Source document name → its text (whitespace-normalised), for every bundled pack."""
    out = {}
    for folder in PACKS_DIR.iterdir():
        if (folder / "pack.yaml").exists():
            meta = yaml.safe_load((folder / "pack.yaml").read_text(encoding="utf-8"))
            out[meta["source"]["document"]] = norm((folder / "source.txt").read_text(encoding="utf-8"))
    return out


SOURCES = _sources()
CITATION = re.compile(r"^(?P<doc>[^,]+), (?P<section>.+?): «(?P<quote>.+)»$", re.S)


# --------------------------------------------------------------------------------------------
# 1. decide - : every route of the three seed agreements
# --------------------------------------------------------------------------------------------

VGR_BASE = {
    "date": "2024-05-01",
    "kind": "drug_exception",
    "patient": {"country": "SE"},
    "product": {"area": "drug"},
}
SKANE_BASE = {
    "date": "2025-03-10",
    "kind": "assistive_device",
    "patient": {"country": "SE", "home_region": "17"},
    "care": {"region": "12"},
    "product": {"area": "mobility", "cost_sek": 4500, "advanced_adaptation": False},
}
VARMLAND_BASE = {
    "date": "2023-06-15",
    "kind": "medtech_product",
    "patient": {
        "country": "SE",
        "home_region": "17",
        "home_municipality": "1780",
        "housing": "ordinary",
        "home_care_weeks": 0,
        "short_term_stay": False,
        "age": 82,
    },
    "care": {"self_care": False, "discharge": False},
    "product": {"area": "medtech", "listed": True, "replaces_listed": False},
}

VGR_OHSN = {
    "invoice.recipient.name": "Västra Götalandsregionen, Operativ hälso- och sjukvårdsnämnd",
    "invoice.recipient.department": "Operativ hälso- och sjukvårdsnämnd",
    "invoice.recipient.orderer_id": "4250001",
    "invoice.recipient.gln": "7350003379300",
    "invoice.recipient.address": ["FE842", "405 83 Göteborg"],
    "invoice.recipient.reference": None,
}
HALLAND_098 = {
    "invoice.recipient.name": "Region Halland",
    "invoice.recipient.reference": "ZZXXX098",
    "invoice.recipient.project_code": "61165",
    "invoice.recipient.address": ["Box 310", "737 26 FAGERSTA"],
    "invoice.forbidden_fields": ["Personnummer"],
}
HALLAND_104 = {
    "invoice.recipient.name": "Region Halland",
    "invoice.recipient.reference": "ZZXXX104",
    "invoice.recipient.project_code": None,
    "invoice.recipient.address": ["Box 310", "737 26 FAGERSTA"],
}
VARMLAND_INVOICE = {
    "invoice.recipient.name": "Region Värmland",
    "invoice.recipient.orderer_id": "9640028",
    "invoice.recipient.peppol_id": "0007:2321000156",
    "invoice.recipient.gln": "7362321000156",
    "invoice.recipient.org_number": "232100-0156",
    "invoice.recipient.address": ["Box 5081", "650 05 KARLSTAD"],
    "invoice.forbidden_fields": ["Personnummer"],
}
NO_INVOICE = {"invoice": None}


def route(
    name: str,
    base: dict[str, Any],
    over: dict[str, Any],
    *,
    quote: str | None,
    status: str = "decided",
    decider: str | None = None,
    payer: str | None = None,
    invoicer: str | None = None,
    contact: bool = False,
    commitment: bool = False,
    rule: str | None = None,
    **more: Any,
) -> Any:
    """One route: the case, the DESIGN contract fields it must answer, and a sentence of the source."""
    expected = {
        "status": status,
        "decider": decider,
        "payer": payer,
        "invoicer": invoicer,
        "prior_contact_required": contact,
        "payment_commitment_required": commitment,
        "rule_id": rule,
    }
    for key, value in more.items():
        if isinstance(value, dict):
            expected |= value
        else:
            expected[key.replace("__", ".")] = value
    return pytest.param(merge(base, over), expected, quote, id=name)


ROUTES = [
    # --- VGR ↔ Region Halland, undantagshantering av läkemedel ---------------------------------
    route(
        "vgr-halland/bilaga-1-vgr-patient-i-halland",
        VGR_BASE,
        {"patient": {"home_region": "14"}, "care": {"region": "13", "referral": False}},
        decider="region:13",
        payer="region:14",
        invoicer="region:13",
        rule=f"{VGR}/bilaga-1",
        recipient=VGR_OHSN,
        quote="Beslut om undantagshantering tas inom Region Halland • Västra Götalandsregionen har "
        "kostnadsansvar • Region Halland fakturerar Västra Götalandsregionen",
    ),
    route(
        "vgr-halland/bilaga-2-hallandspatient-i-vgr",
        VGR_BASE,
        {
            "patient": {"home_region": "13", "home_municipality": "1380"},
            "care": {"region": "14", "referral": False},
        },
        decider="region:14",
        payer="region:13",
        invoicer="region:14",
        rule=f"{VGR}/bilaga-2",
        recipient=HALLAND_098,
        no_contact={"contact": None},
        quote="Region Halland Referensnummer: ZZXXX098, projektkod 61165 Box 310 737 26 FAGERSTA",
    ),
    route(
        "vgr-halland/bilaga-3-hallandspatient-remitterad",
        VGR_BASE,
        {"patient": {"home_region": "13"}, "care": {"region": "14", "referral": True}},
        decider="region:14",
        payer="region:13",
        invoicer="unit",
        rule=f"{VGR}/bilaga-3",
        recipient=HALLAND_104,
        quote="Behandlande vårdenhet i Västra Götalandsregionen som beslutat om undantagshantering "
        "fakturerar Region Halland",
    ),
    route(
        "vgr-halland/vgr-patient-remitterad-till-halland-no-agreement",
        VGR_BASE,
        {"patient": {"home_region": "14"}, "care": {"region": "13", "referral": True}},
        status="no_agreement",
        rule=f"{VGR}/vgr-remitterad-till-halland",
        no_invoice=NO_INVOICE,
        quote="Patient folkbokförd i Region Halland som remitterats till Västra Götalandsregionen "
        "(regionsjukvård) – bilaga 3",
    ),
    route(
        "vgr-halland/nt-radet-do-not-use-contact-halland-first",
        VGR_BASE,
        {
            "patient": {"home_region": "13"},
            "care": {"region": "14", "referral": False},
            "product": {"nt_council": "do_not_use"},
        },
        decider="region:14",
        payer="region:13",
        invoicer="region:14",
        contact=True,
        rule=f"{VGR}/bilaga-2",
        contact__party="region:13",
        contact__name="Region Halland",
        recipient=HALLAND_098,
        quote="Kontakt med den region som har kostnadsansvar tas innan behandling initieras",
    ),
    route(
        "vgr-halland/nt-radet-await-contact-vgr-first",
        VGR_BASE,
        {
            "patient": {"home_region": "14"},
            "care": {"region": "13", "referral": False},
            "product": {"nt_council": "await"},
        },
        decider="region:13",
        payer="region:14",
        invoicer="region:13",
        contact=True,
        rule=f"{VGR}/bilaga-1",
        contact__party="region:14",
        contact__name="Västra Götalandsregionen",
        recipient=VGR_OHSN,
        quote="NT-rådet (Rådet för nya terapier) givit yttrande till regionerna om att inte använda "
        "eller avvakta användning av aktuellt läkemedel.",
    ),
    # --- Region Skåne, hjälpmedel till patienter som bor utanför Skåne -------------------------
    route(
        "skane/under-10000-prescribe-directly",
        SKANE_BASE,
        {},
        decider="region:12",
        payer="region:17",
        invoicer="region:12",
        rule=f"{SKANE}/annat-lan-under-10000",
        no_contact={"contact": None},
        invoice__recipient__name="Region Värmland",
        quote="En patient som är folkbokförd i annat län kan få förskrivet hjälpmedel i Skåne om "
        "kostnaden är under 10 000 kronor.",
    ),
    route(
        "skane/exactly-10000-contact-home-region",
        SKANE_BASE,
        {"product": {"cost_sek": 10000}},
        decider="region:17",
        payer="region:17",
        invoicer="region:12",
        contact=True,
        rule=f"{SKANE}/annat-lan-over-10000",
        contact__party="region:17",
        contact__name="Region Värmland",
        quote="Vårdregionen ska alltid kontakta hemregionen för överenskommelse om hjälpmedlet • kostar "
        "mer än 10 000 kronor.",
    ),
    route(
        "skane/10001-contact-home-region",
        SKANE_BASE,
        {"product": {"cost_sek": 10001}},
        decider="region:17",
        payer="region:17",
        invoicer="region:12",
        contact=True,
        rule=f"{SKANE}/annat-lan-over-10000",
        contact__name="Region Värmland",
        quote="kostar mer än 10 000 kronor.",
    ),
    route(
        "skane/advanced-adaptation-contact-home-region",
        SKANE_BASE,
        {"patient": {"home_region": "01"}, "product": {"cost_sek": 8000, "advanced_adaptation": True}},
        decider="region:01",
        payer="region:01",
        invoicer="region:12",
        contact=True,
        rule=f"{SKANE}/annat-lan-avancerad-anpassning",
        contact__party="region:01",
        contact__name="Region Stockholm",
        quote="kräver avancerad anpassning/service som kräver produktspecifik kompetens, till exempel "
        "hörapparater eller eldrivna rullstolar.",
    ),
    route(
        "skane/hearing-aid-payment-commitment",
        SKANE_BASE,
        {"patient": {"home_region": "13"}, "product": {"area": "hearing", "cost_sek": 3000}},
        decider="region:13",
        payer="region:13",
        invoicer="region:12",
        contact=True,
        commitment=True,
        rule=f"{SKANE}/annat-lan-horsel",
        rule_ids=[f"{SKANE}/annat-lan-horsel", f"{SKANE}/websesam-horsel"],
        invoice__recipient__name="Region Halland",
        quote="Hemregionen ska utfärda en betalningsförbindelse.",
    ),
    route(
        "skane/diabetes-sesam-registration-before-hand-out",
        SKANE_BASE,
        {"product": {"area": "diabetes", "cost_sek": 900}},
        decider="region:12",
        payer="region:17",
        invoicer="region:12",
        rule=f"{SKANE}/annat-lan-under-10000",
        rule_ids=[f"{SKANE}/annat-lan-under-10000", f"{SKANE}/sesam-lmn"],
        invoice__recipient__name="Region Värmland",
        quote="Du kan inte lämna ut något hjälpmedel till patienten förrän VO Hjälpmedel har gett "
        "klartecken och patienten finns registrerad i Sesam.",
    ),
    route(
        "skane/eu-eea-patient-payer-null-with-note",
        SKANE_BASE,
        {"patient": {"country": "DK", "home_region": None}, "product": {"area": "orthopedic"}},
        decider="region:12",
        payer=None,
        contact=True,
        rule=f"{SKANE}/utland-ees",
        contact__email="hjalpmedelkundtjanst@skane.se",
        no_invoice=NO_INVOICE,
        quote="Du som förskrivare ska försäkra sig om vilka regler som gäller för just den patient som "
        "du ska förskriva hjälpmedel till",
    ),
    route(
        "skane/swede-abroad-outside-eea-without-last-home-region-incomplete",
        SKANE_BASE,
        {"patient": {"country": "TH", "home_region": None, "swedish_citizen": True}},
        status="incomplete",
        missing=["patient.last_home_region"],
        no_invoice=NO_INVOICE,
        quote=None,
    ),
    route(
        "skane/swede-abroad-outside-eea-with-last-home-region",
        SKANE_BASE,
        {
            "patient": {
                "country": "TH",
                "home_region": None,
                "swedish_citizen": True,
                "last_home_region": "13",
            }
        },
        decider="region:12",
        payer=None,
        contact=True,
        rule=f"{SKANE}/utlandssvensk-utanfor-ees",
        contact__email="hjalpmedelkundtjanst@skane.se",
        quote="Du ska ta reda på i vilken region patienten var folkbokförd innan hen flyttade från Sverige "
        "innan du kontaktar VO Hjälpmedel.",
    ),
    # --- Region Värmland och kommunerna, medicintekniska produkter och SärNär ------------------
    route(
        "varmland/special-housing-municipality-pays",
        VARMLAND_BASE,
        {"patient": {"housing": "special_housing", "home_care_weeks": None}},
        decider="kommun:1780",
        payer="kommun:1780",
        rule=f"{VARMLAND}/sabo-listad",
        no_invoice=NO_INVOICE,
        quote="Personer bosatta i särskilda boenden räknas alltid som hemsjukvårdspatienter.",
    ),
    route(
        "varmland/lss-group-home-arvika-pays",
        VARMLAND_BASE,
        {"patient": {"housing": "lss_group_home", "home_municipality": "1784"}},
        decider="kommun:1784",
        payer="kommun:1784",
        rule=f"{VARMLAND}/lss-listad",
        no_invoice=NO_INVOICE,
        quote="För personer i särskilt boende och i hemsjukvård samt gruppboende inom LSS ansvarar "
        "kommunen för medicintekniska produkter",
    ),
    route(
        "varmland/home-care-2-weeks-region-pays",
        VARMLAND_BASE,
        {"patient": {"home_care_weeks": 2}},
        decider="region:17",
        payer="region:17",
        rule=f"{VARMLAND}/ordinart-boende",
        no_invoice=NO_INVOICE,
        quote="För personer i ordinärt boende utan hemsjukvård ansvarar regionen för medicintekniska- och "
        "SärNär- produkter",
    ),
    route(
        "varmland/home-care-3-weeks-municipality-pays",
        VARMLAND_BASE,
        {"patient": {"home_care_weeks": 3}},
        decider="kommun:1780",
        payer="kommun:1780",
        rule=f"{VARMLAND}/hemsjukvard-listad",
        no_invoice=NO_INVOICE,
        quote="Hemsjukvård definieras i detta avtal som hälso- och sjukvårdsinsatser med varaktighet minst "
        "tre veckor",
    ),
    route(
        "varmland/short-term-stay-without-home-care-region-pays",
        VARMLAND_BASE,
        {"patient": {"short_term_stay": True}},
        decider="kommun:1780",
        payer="region:17",
        invoicer="kommun:1780",
        rule=f"{VARMLAND}/korttid-utan-hemsjukvard",
        recipient=VARMLAND_INVOICE,
        quote="Kostnadsansvaret ligger på regionen även när personer utan hemsjukvård befinner sig på "
        "korttidsplats.",
    ),
    route(
        "varmland/self-care-unit-pays",
        VARMLAND_BASE,
        {"patient": {"housing": "special_housing"}, "care": {"self_care": True}},
        decider="unit",
        payer="unit",
        rule=f"{VARMLAND}/egenvard",
        quote="Kostnader för hjälpmedel och produkter som används vid egenvård tillhör den enhet/mottagning "
        "som bedömt och beslutat om egenvård.",
    ),
    route(
        "varmland/discharge-7-days-region-sends-along",
        VARMLAND_BASE,
        {
            "patient": {"housing": "special_housing"},
            "care": {"discharge": True},
            "product": {"supply_days": 7},
        },
        decider="region:17",
        payer="region:17",
        rule=f"{VARMLAND}/utskrivning-hogst-en-vecka",
        quote="Vid utskrivning ska regionen skicka med nödvändiga produkter om kommunen inte har detta, "
        "dock högst för en vecka.",
    ),
    route(
        "varmland/discharge-8-days-municipality-pays",
        VARMLAND_BASE,
        {
            "patient": {"housing": "special_housing"},
            "care": {"discharge": True},
            "product": {"supply_days": 8},
        },
        decider="kommun:1780",
        payer="kommun:1780",
        rule=f"{VARMLAND}/sabo-listad",
        quote="Personer bosatta i särskilda boenden räknas alltid som hemsjukvårdspatienter.",
    ),
    route(
        "varmland/unlisted-product-region-pays-municipality-invoices",
        VARMLAND_BASE,
        {"patient": {"home_care_weeks": 6}, "product": {"listed": False, "replaces_listed": False}},
        decider="kommun:1780",
        payer="region:17",
        invoicer="kommun:1780",
        rule=f"{VARMLAND}/hemsjukvard-ovrig",
        recipient=VARMLAND_INVOICE,
        quote="För övriga ordinerade produkter och tillbehör bär regionen kostnadsansvaret.",
    ),
    route(
        "varmland/last-day-of-extension-2024-02-01",
        VARMLAND_BASE,
        {"date": "2024-02-01"},
        decider="region:17",
        payer="region:17",
        rule=f"{VARMLAND}/ordinart-boende",
        quote="För personer i ordinärt boende utan hemsjukvård ansvarar regionen",
    ),
    route(
        "varmland/day-after-agreement-ended-2024-02-02",
        VARMLAND_BASE,
        {"date": "2024-02-02"},
        status="no_agreement",
        no_invoice=NO_INVOICE,
        quote="Avtalet gäller från 2021-01-01 – 2022-12-31 med en förlängning till och med 2024-02-01.",
    ),
]

CASES = {p.id: p.values[0] for p in ROUTES}


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


@pytest.mark.parametrize(("case", "expected", "quote"), ROUTES)
def test_decide_stdin_answers_the_contract(
    single: Callable[[dict[str, Any]], dict[str, Any]],
    case: dict[str, Any],
    expected: dict[str, Any],
    quote: str | None,
) -> None:
    decision = single(case)
    for path, value in expected.items():
        assert get(decision, path) == value, f"{path}: {get(decision, path)!r} != {value!r}"
    if expected["rule_id"] is not None:
        assert decision["rule_id"] == decision["rule_ids"][0]
    # Every citation names its document and section and quotes the source word for word.
    for citation in decision["citations"]:
        match = CITATION.match(citation)
        assert match, citation
        assert match["doc"] in SOURCES, citation
        assert norm(match["quote"]) in SOURCES[match["doc"]], citation
    if quote is None:
        assert decision["citations"] == []
    else:
        quotes = [CITATION.match(c)["quote"] for c in decision["citations"]]  # type: ignore[index]
        assert any(norm(quote) in norm(q) for q in quotes), quotes


def test_decide_route_specifics(single: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Details of some routes that do not fit the table above: reasons, notes, actions, missing."""
    runs = {
        name: single(CASES[name])
        for name in (
            "vgr-halland/vgr-patient-remitterad-till-halland-no-agreement",
            "skane/eu-eea-patient-payer-null-with-note",
            "skane/swede-abroad-outside-eea-without-last-home-region-incomplete",
            "skane/swede-abroad-outside-eea-with-last-home-region",
            "skane/diabetes-sesam-registration-before-hand-out",
            "skane/hearing-aid-payment-commitment",
            "varmland/day-after-agreement-ended-2024-02-02",
            "varmland/unlisted-product-region-pays-municipality-invoices",
            "vgr-halland/bilaga-1-vgr-patient-i-halland",
            "vgr-halland/bilaga-2-hallandspatient-i-vgr",
        )
    }
    referred = runs["vgr-halland/vgr-patient-remitterad-till-halland-no-agreement"]
    assert "omfattar inte" in referred["reason"] and referred["payer"] is None

    eu = runs["skane/eu-eea-patient-payer-null-with-note"]
    assert eu["payer"] is None and "Patienter som bor i andra länder" in eu["payer_note"]
    assert eu["rule_ids"] == [f"{SKANE}/utland-ees", f"{SKANE}/utland-sesam"]

    unknown = runs["skane/swede-abroad-outside-eea-without-last-home-region-incomplete"]
    assert unknown["missing"] == ["patient.last_home_region"]
    assert unknown["payer"] is None and unknown["rule_id"] is None
    assert "patient.last_home_region" in unknown["reason"]

    known = runs["skane/swede-abroad-outside-eea-with-last-home-region"]
    assert "Region Halland" in known["payer_note"] and known["missing"] == []

    diabetes = runs["skane/diabetes-sesam-registration-before-hand-out"]
    assert any("Lämna inte ut något hjälpmedel förrän VO Hjälpmedel" in a for a in diabetes["actions"])

    hearing = runs["skane/hearing-aid-payment-commitment"]
    assert any("betalningsförbindelse" in a for a in hearing["actions"])

    ended = runs["varmland/day-after-agreement-ended-2024-02-02"]
    assert ended["payer"] is None and ended["rule_id"] is None
    assert VARMLAND in ended["reason"] and "2021-01-01 – 2024-02-01" in ended["reason"]
    assert "giltighetstid" in ended["reason"]

    unlisted = runs["varmland/unlisted-product-region-pays-municipality-invoices"]
    assert "Beställar-ID 9640028" in unlisted["invoice"]["required_fields"]
    assert any("isabell.hassel@regionvarmland.se" in a for a in unlisted["actions"])

    bilaga1 = runs["vgr-halland/bilaga-1-vgr-patient-i-halland"]
    assert "Personnummer" in bilaga1["invoice"]["required_fields"]
    bilaga2 = runs["vgr-halland/bilaga-2-hallandspatient-i-vgr"]
    assert "Personnummer" not in bilaga2["invoice"]["required_fields"]
    assert bilaga2["explanation"]["pack"] == VGR
    assert bilaga2["explanation"]["valid_from"] == "2023-01-01"


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
    bilaga2 = CASES["vgr-halland/bilaga-2-hallandspatient-i-vgr"]
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
    # A scope one condition narrower than the bundled pack, so the copy does not compete with it.
    text = text.replace("  kind: drug_exception\n", "  kind: drug_exception\n  patient.country: SE\n", 1)
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
    "same-scope": lambda f: _edit_meta(f, "  patient.country: SE\n", ""),
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
    assert decision == single(CASES["vgr-halland/bilaga-2-hallandspatient-i-vgr"])
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
    assert "Ska inte stå på fakturan: Personnummer" in text
    assert not text.lstrip().startswith("{")


def test_explain_hearing_aid_says_what_comes_first(tmp_path: Path) -> None:
    case_file = tmp_path / "horsel.json"
    case_file.write_text(json.dumps(CASES["skane/hearing-aid-payment-commitment"]), encoding="utf-8")
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
        reference = want["invoice"]["recipient"]["reference"] if want["invoice"] else None
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


def test_pack_copy_with_narrower_scope_is_clean(runs: dict[str, Any]) -> None:
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
    case = merge(CASES["vgr-halland/bilaga-1-vgr-patient-i-halland"], {"care": {"referral": "false"}})
    lenient.write_text(json.dumps(case) + "\n", encoding="utf-8")
    assert in_process("decide", "-", stdin=json.dumps(case)).exit_code == 2  # the single path rejects it
    return {
        "empty-jsonl": in_process("decide", "--batch", str(empty), "--out", str(tmp / "empty.jsonl")),
        "list-value": in_process("decide", "--batch", str(listed), "--out", str(tmp / "list.csv")),
        "lenient": in_process("decide", "--batch", str(lenient), "--out", str(tmp / "lenient.csv")),
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
