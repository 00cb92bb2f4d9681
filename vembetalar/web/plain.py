"""The desk's internal names as a person reads them: conditions, values, hit policies, audit
actions, parties.

The packs and the engine speak in field names and codes (``patient.home_region = 13``,
``do_not_use``, ``region:14``); the API keeps them. A page shows the same in Swedish
(``hemregion är Region Halland``), and this module is where that translation lives, so that the
pages and the test that crawls them agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from vembetalar.model import codes
from vembetalar.model.case import LABELS, case_fields
from vembetalar.model.decision import RuleMatch
from vembetalar.model.money import format_sek
from vembetalar.rules.conditions import Condition
from vembetalar.rules.pack import Pack
from vembetalar.web.forms import AREA_NAMES, CHOICES, KIND_NAMES
from vembetalar.web.messages import field_error

#: Countries by their Swedish names: the Nordic countries, the EU/EEA and Switzerland, and a few
#: more a Swedish desk meets; other codes are shown as they are (two capital letters).
COUNTRY_NAMES: dict[str, str] = {
    "SE": "Sverige", "NO": "Norge", "DK": "Danmark", "FI": "Finland", "IS": "Island",
    "AT": "Österrike", "BE": "Belgien", "BG": "Bulgarien", "CY": "Cypern", "CZ": "Tjeckien",
    "DE": "Tyskland", "EE": "Estland", "ES": "Spanien", "FR": "Frankrike", "GR": "Grekland",
    "HR": "Kroatien", "HU": "Ungern", "IE": "Irland", "IT": "Italien", "LT": "Litauen",
    "LU": "Luxemburg", "LV": "Lettland", "MT": "Malta", "NL": "Nederländerna", "PL": "Polen",
    "PT": "Portugal", "RO": "Rumänien", "SI": "Slovenien", "SK": "Slovakien", "LI": "Liechtenstein",
    "CH": "Schweiz", "GB": "Storbritannien", "US": "USA", "UA": "Ukraina", "TR": "Turkiet",
    "SY": "Syrien", "IQ": "Irak", "IR": "Iran", "AF": "Afghanistan", "SO": "Somalia",
    "ER": "Eritrea", "TH": "Thailand", "CN": "Kina", "IN": "Indien", "CA": "Kanada",
    "AU": "Australien", "ES-CN": "Kanarieöarna",
}  # fmt: skip
#: The packs' named value sets.
SET_NAMES = {
    "eu_eea_ch": "EU/EES-länderna och Schweiz",
    "nordic": "de nordiska länderna",
}
#: How the rules of a table are chosen (a pack's hit policy).
HIT_POLICY_NAMES = {
    "unique": "en regel i taget gäller",
    "first": "den första regeln som stämmer gäller",
    "collect": "alla regler som stämmer gäller",
    "any": "regler som stämmer ger samma svar",
    "priority": "regeln med högst prioritet gäller",
}
_OPS = {
    "eq": "är",
    "ne": "är inte",
    "lt": "är under",
    "le": "är högst",
    "gt": "är över",
    "ge": "är minst",
}
#: What the audit log's actions mean.
ACTION_NAMES = {
    "login": "Inloggning",
    "login.failed": "Misslyckad inloggning",
    "audit.read": "Läste granskningsloggen",
    "case.create": "Skapade ärende",
    "case.list": "Listade ärenden",
    "case.read": "Läste ärende",
    "case.search": "Sökte ärenden",
    "case.print": "Skrev ut beslut",
    "case.step": "Registrerade steg",
    "commitment.create": "Registrerade betalningsförbindelse",
    "event.cancel": "Makulerade fakturaunderlag",
    "event.create": "Registrerade fakturaunderlag",
    "invoice.check": "Kontrollerade mottagen faktura",
    "invoice.export": "Hämtade faktura",
    "invoice.read": "Läste faktura",
    "invoice.status": "Ändrade fakturans status",
    "password.changed": "Bytte lösenord",
    "registry.update": "Ändrade organisationsregistret",
    "supply.correction": "Rättade förrådet",
    "supply.shortages": "Läste restsituationer",
    "supply.withdrawal": "Uttag ur förråd",
    "token.created": "Skapade API-nyckel",
    "token.revoked": "Återkallade API-nyckel",
    "user.deactivated": "Inaktiverade användare",
    "denied.forbidden": "Nekades: saknar behörighet",
    "denied.not_found": "Nekades: finns inte eller syns inte",
}


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code, code)


def value_name(field: str, value: Any) -> str:
    """One value of a case field as a person reads it."""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    spec = case_fields().get(field)
    if spec is not None and spec.domain == "region":
        return codes.regions().get(str(value), str(value))
    if spec is not None and spec.domain == "municipality":
        name = codes.municipalities().get(str(value))
        return f"{name} kommun" if name else str(value)
    if spec is not None and spec.domain == "country":
        return country_name(str(value))
    if field == "kind":
        return KIND_NAMES.get(str(value), str(value))
    if field == "product.area":
        return AREA_NAMES.get(str(value), str(value))
    if field in CHOICES:
        return dict(CHOICES[field]).get(str(value), str(value))
    if spec is not None and spec.money is not None and isinstance(value, int | float | Decimal):
        return format_sek(Decimal(str(value)))
    if isinstance(value, Decimal | float | int):
        text = f"{Decimal(str(value)).normalize():f}"
        return text.replace(".", ",")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def condition_text(condition: Condition) -> str:
    """``hemregion är Region Halland``, ``kostnad (kr) är minst 10 000,00 kr``."""
    name = LABELS.get(condition.field, condition.field)
    if condition.op == "known":
        return f"{name} är känd"
    if condition.op in ("in", "not_in"):
        word = "är en av" if condition.op == "in" else "är inte en av"
        if condition.set_name:
            return f"{name} {word} {SET_NAMES.get(condition.set_name, 'en uppräknad värdemängd')}"
        values = [value_name(condition.field, v) for v in condition.value]
        return f"{name} {word} {', '.join(values)}"
    value = value_name(condition.field, condition.value)
    spec = case_fields().get(condition.field)
    if spec is not None and spec.type == "bool" and condition.op in ("eq", "ne"):
        return f"{name}: {value}" if condition.op == "eq" else f"{name}: inte {value}"
    return f"{name} {_OPS[condition.op]} {value}"


def hit_policy_name(policy: str) -> str:
    return HIT_POLICY_NAMES.get(policy, "")


def action_name(action: str) -> str:
    return ACTION_NAMES.get(action, action.replace(".", " ").replace("_", " "))


# -- texts that come with the packs and the engine ----------------------------------------------------

#: Code words in stored texts (an engine's reason, a pack's note), and what they mean.
_WORDS = {
    "no_agreement": "inget avtal gäller",
    "valid_to": "slutdatum",
    "valid_from": "startdatum",
    "payer": "betalare",
    "null": "inget värde",
}
_PARTY = re.compile(r"\b(?:region|kommun):[0-9]{2,4}\b")


def plain_text(text: str | None, packs: Sequence[Pack]) -> str:
    """A stored text (a decision's reason, a pack's note) with its code words in Swedish: pack
    ids as the agreements' titles, field names as their labels, kinds and parties by name."""
    if not text:
        return ""
    titles = {p.id: f"«{p.meta.title}»" for p in packs}
    words: dict[str, str] = {**titles, **_WORDS}
    words |= {name: LABELS[name] for name in case_fields() if "." in name and name in LABELS}
    words |= {kind: name[:1].lower() + name[1:] for kind, name in KIND_NAMES.items()}
    for choices in CHOICES.values():
        words |= {value: label.lower() for value, label in choices if "_" in value}
    pattern = re.compile(
        r"\(?\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b\)?"
    )

    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        inner = found.strip("()")
        if inner not in words:
            return found
        # "hemregion (patient.home_region)", "«titel» (pack_id)": the name is already there.
        if found.startswith("(") and found.endswith(")") and ("." in inner or inner in titles):
            return ""
        return found.replace(inner, words[inner])

    text = pattern.sub(swap, text)
    text = _PARTY.sub(lambda m: codes.party_name(m.group(0)), text)
    text = re.sub(r"\s+([,.;)])", r"\1", re.sub(r" {2,}", " ", text))
    return text


def rule_reasons(match: RuleMatch, packs: Sequence[Pack]) -> list[str]:
    """Why a rule fired, in Swedish: its conditions as the pack has them, or (a rule no longer
    in the packs) the stored text with its code words translated."""
    for pack in packs:
        for rule in pack.rules():
            if rule.full_id == match.rule_id:
                return [condition_text(c) for c in rule.conditions]
    return [plain_text(m, packs) for m in match.matched]


def parameter_text(value: float, unit: str) -> str:
    number = Decimal(str(value))
    if unit.strip() == "kr":
        return format_sek(number)
    return f"{value_name('', number)} {unit}".strip()


#: An agreement that ends within this many days is flagged (issue 11: on Avtal, on decisions).
ENDING_DAYS = 90


@dataclass(frozen=True)
class Standing:
    """Whether an agreement is in force on a day, and for how long."""

    status: Literal["not_yet", "in_force", "ending", "expired"]
    text: str
    days_left: int | None = None


def standing(pack: Pack, today: dt.date) -> Standing:
    start, end = pack.meta.valid_from, pack.meta.valid_to
    if start is not None and today < start:
        return Standing("not_yet", f"gäller från {start.isoformat()}")
    if end is not None and today > end:
        return Standing("expired", f"upphört {end.isoformat()}")
    if end is not None and (end - today).days <= ENDING_DAYS:
        days = (end - today).days
        return Standing("ending", f"upphör {end.isoformat()} (om {days} dagar)", days)
    return Standing("in_force", "gäller")


_REFUSED_ROLE = re.compile(r"^rollen \S+ får inte göra detta \(\S+\)$")


def page_message(message: str) -> str:
    """An error as a page shows it: a refused permission without the role's and permission's
    internal names, field names as labels."""
    if _REFUSED_ROLE.match(message):
        return "Din roll får inte göra detta."
    return field_error(message).text
