"""Every page of the desk as each demo user reaches it by following links, and what a person reads
on it — for the test that no internal name is shown (test_desk_crawl.py) and for the browser
checks of every page (axe-core, 390 px)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from vembetalar.clock import Clock
from vembetalar.model.case import case_fields
from vembetalar.security import PERMISSIONS
from vembetalar.web.app import create_app
from vembetalar.web.demo import DemoLogin, run_demo_invoices, seed
from vembetalar.web.settings import Settings

DEMO_TODAY = dt.date(2026, 11, 27)

#: What is never for a person to read: the case's field names, permissions, party ids, enum
#: values and other snake_case names, conditions as code, pack internals, file names, null/true,
#: bits of UUIDs.
INTERNAL: list[tuple[str, re.Pattern[str]]] = [
    ("fältnamn", re.compile(r"\b(?:" + "|".join(re.escape(n) for n in case_fields() if "." in n) + r")\b")),
    ("behörighet", re.compile(r"\b(?:" + "|".join(re.escape(p) for p in PERMISSIONS) + r")\b")),
    ("part-id", re.compile(r"\b(?:region|kommun|land|org):[0-9A-Za-z]+")),
    ("kodord", re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")),
    ("villkor som kod", re.compile(r"\b[a-z_.]+ (?:=|!=|≠|<=|>=) \S")),
    ("träffpolicy", re.compile(r"träffpolicy|hit.policy|\bunique\b|\bfirst\b|\bcollect\b")),
    ("filnamn", re.compile(r"\b[\w-]+\.(?:txt|json|yaml|yml|md)\b")),
    ("engelskt kodord", re.compile(r"\b(?:clearance|decider|payer|invoicer|decided|incomplete|dispensed)\b")),
    ("null", re.compile(r"\b(?:null|None|true|false|NaN)\b")),
    ("uuid", re.compile(r"\b(?=[0-9a-f]{8}\b)(?=[0-9a-f]*[a-f])[0-9a-f]*[0-9][0-9a-f]*\b")),
]
#: Links not followed: other formats, the API and its docs, leaving.
SKIP = re.compile(
    r"^/(?:logout|api/|static/|openapi)|\.(?:csv|pdf|xml|zip|json)(?:\?|$)|/(?:ubl|pdf|csv)(?:\?|$)"
)
#: At most this many pages of one shape (ids replaced) per user: a case page is a case page.
PER_SHAPE = 4


class _Reader(HTMLParser):
    """Text a person reads: text nodes (not script/style) and the attributes read aloud or shown.
    Text marked ``translate="no"`` is literal on purpose (a file format's column names)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style", "template") or a.get("translate") == "no":
            self._skip += 1
            self._skipping.append(tag)
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"].split("#", 1)[0])
        for name in ("title", "placeholder", "aria-label", "alt"):
            if a.get(name):
                self.parts.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.parts.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data)


def read(html: str) -> tuple[str, list[str]]:
    """The page's readable text (URLs and e-mail addresses left out) and its same-site links."""
    reader = _Reader()
    reader.feed(html)
    text = " ".join(" ".join(reader.parts).split())
    text = re.sub(r"https?://\S+|\S+@\S+", " ", text)
    return text, reader.links


def internal_names(text: str) -> list[str]:
    found = []
    for what, pattern in INTERNAL:
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            found.append(f"{what}: «{match.group(0)}» i «…{text[start : match.end() + 40]}…»")
    return found


@dataclass
class Demo:
    app: FastAPI
    logins: dict[str, DemoLogin] = field(default_factory=dict)

    def client(self, username: str) -> TestClient:
        client = TestClient(self.app, base_url="https://testserver")
        page = client.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        form = {"csrf": token.group(1), "username": username, "password": self.logins[username].password}
        response = client.post("/login", data=form, follow_redirects=False)
        assert response.status_code == 303, response.text
        return client


def demo_app(var: Path) -> Demo:
    """The desk with the demo's users, cases and invoices, on "today" = DEMO_TODAY."""
    settings = Settings(database_url=f"sqlite:///{var / 'demo.db'}", var_dir=var, clock=Clock(DEMO_TODAY))
    app = create_app(settings)
    with app.state.sessions() as db:
        logins, _ = seed(db, app.state.engine, DEMO_TODAY)
        run_demo_invoices(db, app.state.engine, DEMO_TODAY)
    return Demo(app, {login.username: login for login in logins})


def shape(path: str) -> str:
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "*", path)


START = ["/cases", "/cases/new", "/agreements", "/audit"]


def crawl(client: TestClient, start: list[str] = START) -> Iterator[tuple[str, str]]:
    """(path, html) of every HTML page reachable by links from ``start`` (error pages included),
    at most PER_SHAPE of a kind."""
    seen: set[str] = set()
    shapes: dict[str, int] = {}
    queue = list(start)
    while queue:
        path = queue.pop(0)
        if path in seen or SKIP.search(path):
            continue
        seen.add(path)
        key = shape(path)
        if shapes.get(key, 0) >= PER_SHAPE:
            continue
        shapes[key] = shapes.get(key, 0) + 1
        response = client.get(path)
        if not response.headers["content-type"].startswith("text/html"):
            continue  # error pages are pages too: a refusal must be Swedish as well
        _, links = read(response.text)
        queue.extend(link for link in links if link not in seen)
        yield path, response.text
