"""The attack review's findings, each as the attack that worked, now refused.

1. bodies read before authentication, unbounded, and echoed back in the 422;
2. logins that stalled the event loop, a throttle that believed X-Forwarded-For and let an
   attacker lock a known user out;
3. personal data in logs (tracebacks with SQL parameters, validation input), a lone surrogate
   that crashed the error handler;
4. logout that did not end the session;
5. denied attempts not audited, tokens that never expire, a world-readable database, no HSTS,
   a demo patient's personnummer as the OpenAPI example.

Real servers throughout: the app on SQLite and PostgreSQL (``desk``), uvicorn on loopback started
here with the same options as ``vembetalar serve`` (``web.server.server_options``), and one real
``uvicorn.run`` subprocess for what reaches stderr.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import select
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import live_server
import pytest
from fastapi.testclient import TestClient
from pg_cluster import free_port
from sqlalchemy import select as sql_select
from test_api import API, HALLAND_AT_VGR, HEARING_AID_IN_SKANE, assert_error, create, login, page_csrf
from typer.testing import CliRunner
from webapp import PASSWORD, build_app
from webapp import TestApp as Desk

from vembetalar.cli import app as cli_app
from vembetalar.store.db import URL_ENV, make_engine
from vembetalar.store.models import ApiToken, LoginFailure, User, WebSession

on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

#: A valid personnummer that must never show up in a log.
PNR = "19811228-9874"
PNR_DIGITS = "198112289874"
MB = 1024 * 1024


# -- helpers: a real uvicorn on loopback ----------------------------------------------------------


def served(desk: Desk, **config: Any) -> AbstractContextManager[str]:
    """``desk``'s app under uvicorn in a thread, with the options ``vembetalar serve`` uses."""
    return live_server.served(desk.app, **{"log_level": "info", **config})


@pytest.fixture
def http_desk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """Like ``desk`` (cheap test hashes), but with cookies a plain-http client sends back."""
    from conftest import _faster_apps

    _faster_apps(monkeypatch)
    app = build_app(db_url, tmp_path, cookie_secure=False)
    try:
        yield app
    finally:
        app.app.state.db_engine.dispose()


def browser_login(base: str, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/login", data={"username": username, "password": password, "csrf": csrf}, headers=headers
    )


def chunks(total: int, size: int, consumed: list[int]) -> Iterator[bytes]:
    """A streamed body of ``total`` bytes; ``consumed`` counts the chunks someone pulled."""
    sent = 0
    while sent < total:
        consumed.append(1)
        sent += size
        yield b"9" * size


# == 1. bodies ====================================================================================


@on_sqlite
def test_an_anonymous_100_mb_body_is_refused_401_without_being_read(desk: Desk) -> None:
    client = desk.client()
    for headers in ({}, {"content-length": str(100 * MB)}):
        consumed: list[int] = []
        started = time.monotonic()
        response = client.post(
            f"{API}/decisions",
            content=chunks(100 * MB, 64 * 1024, consumed),
            headers={"content-type": "application/json", **headers},
        )
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert consumed == [], f"{len(consumed)} chunks of the anonymous body were read"
        assert time.monotonic() - started < 2


@on_sqlite
def test_a_declared_oversized_body_is_413_at_once(desk: Desk) -> None:
    api = desk.api("lakare.vgr")
    consumed: list[int] = []
    response = api.post(
        f"{API}/decisions",
        content=chunks(2 * MB, 64 * 1024, consumed),
        headers={"content-type": "application/json", "content-length": str(2 * MB)},
    )
    assert_error(response, 413)
    assert consumed == []
    just_over = api.post(
        f"{API}/decisions", content=b" " * (MB + 1), headers={"content-type": "application/json"}
    )
    assert_error(just_over, 413)
    # Pages (forms) too: the login form is public, so nothing else stops a big body there.
    page = desk.client().post(
        "/login", content=b"a=" + b"b" * MB, headers={"content-type": "x-www-form-urlencoded"}
    )
    assert page.status_code == 413


def _streamed_until_answered(base: str, path: str, headers: dict[str, str], total: int) -> tuple[bytes, int]:
    """POST a chunked body over a raw socket, stopping as soon as the server answers.

    Returns the answer's first bytes and how many body bytes were sent before it came.
    """
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    chunk = b"9" * 16384
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(10)
    answer = sock.recv(200)
    sock.close()
    return answer, sent


@on_sqlite
def test_a_streamed_body_is_cut_off_at_the_limit(db_url: str, tmp_path: Path) -> None:
    """Chunked, with no Content-Length, under a real uvicorn: the server answers 413 once the
    limit is passed, long before the 20 MB are sent."""
    small = build_app(db_url, tmp_path, max_body_bytes=256 * 1024)
    try:
        with served(small) as base:
            auth = {
                "Authorization": f"Bearer {small.tokens['lakare.vgr']}",
                "Content-Type": "application/json",
            }
            answer, sent = _streamed_until_answered(base, f"{API}/decisions", auth, 20 * MB)
            assert answer.startswith(b"HTTP/1.1 413"), answer
            assert sent < 8 * MB, f"{sent} bytes went in before the 413"
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            answer, sent = _streamed_until_answered(base, "/login", form, 20 * MB)
            assert answer.startswith(b"HTTP/1.1 413"), answer
            assert sent < 8 * MB, f"{sent} bytes went in before the 413"
    finally:
        small.app.state.db_engine.dispose()


@on_sqlite
def test_a_20_mb_field_is_not_echoed_back(db_url: str, tmp_path: Path) -> None:
    big = build_app(db_url, tmp_path, max_body_bytes=64 * MB)
    try:
        huge = "1" * (20 * MB)
        body = json.dumps({**HALLAND_AT_VGR, "date": huge})
        response = big.api("lakare.vgr").post(
            f"{API}/decisions", content=body, headers={"content-type": "application/json"}
        )
        detail = assert_error(response, 422, "date:")
        assert len(response.content) < 500, len(response.content)
        assert "…" in detail and "1" * 41 not in detail
    finally:
        big.app.state.db_engine.dispose()


def test_describe_cuts_the_echoed_input() -> None:
    from vembetalar.model.errors import BadCase, describe, parse_case

    long = describe({"type": "date_parsing", "loc": ("date",), "msg": "x", "input": "2" * 5000})
    assert long.startswith('date: "' + "2" * 40 + '…"') and len(long) < 120
    short = describe({"type": "date_parsing", "loc": ("date",), "msg": "x", "input": "2025-13-01"})
    assert short.startswith('date: "2025-13-01"')
    # Our own checks quote the value in their message: cut there too.
    with pytest.raises(BadCase) as region:
        parse_case(
            {"date": "2025-01-01", "kind": "drug_exception", "patient": {"home_region": "9" * 100_000}}
        )
    assert (
        str(region.value) == "patient.home_region: '" + "9" * 40 + "…' är inte en länskod enligt SCB (01–25)"
    )


# == 2. logins ====================================================================================


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_logins_hash_off_the_event_loop(db_url: str, tmp_path: Path) -> None:
    """16 logins at once with real (default-cost) argon2 hashes, and one /me: the /me is answered
    while the logins are still hashing, not after them."""
    desk = build_app(db_url, tmp_path, cookie_secure=False)  # default argon2 cost, not the cheap hash
    try:
        with served(desk) as base:
            clients = []
            for _ in range(16):
                client = httpx.Client(base_url=base, timeout=120)
                page = client.get("/login")
                csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                clients.append((client, csrf))
            done: list[float] = []
            statuses: list[int] = []
            lock = threading.Lock()
            go = threading.Barrier(17)

            def log_in(client: httpx.Client, csrf: str) -> None:
                go.wait()
                response = client.post(
                    "/login", data={"username": "lakare.vgr", "password": PASSWORD, "csrf": csrf}
                )
                with lock:
                    done.append(time.monotonic())
                    statuses.append(response.status_code)

            threads = [threading.Thread(target=log_in, args=pair) for pair in clients]
            for thread in threads:
                thread.start()
            go.wait()
            time.sleep(0.2)  # the logins are in and hashing
            me = httpx.get(
                f"{base}{API}/me", headers={"Authorization": f"Bearer {desk.tokens['lakare.vgr']}"}
            )
            me_done = time.monotonic()
            with lock:
                finished_before_me = sum(1 for moment in done if moment < me_done)
            for thread in threads:
                thread.join(timeout=120)
            assert me.status_code == 200
            assert statuses == [303] * 16 or sorted(statuses) == [303] * 16, statuses
            assert finished_before_me < 16, "the /me waited for every login"
            assert finished_before_me <= 8, f"{finished_before_me} of 16 logins finished before /me"
    finally:
        desk.app.state.db_engine.dispose()


@on_sqlite
def test_rotating_x_forwarded_for_does_not_escape_the_throttle(http_desk: Desk) -> None:
    with served(http_desk) as base:
        for attempt in range(5):
            wrong = browser_login(base, "faktura.halland", "fel", **{"X-Forwarded-For": f"10.9.8.{attempt}"})
            assert wrong.status_code == 401
        still = browser_login(base, "faktura.halland", PASSWORD, **{"X-Forwarded-For": "10.9.8.200"})
        assert still.status_code == 429, "a made-up X-Forwarded-For chose the throttled address"


@on_sqlite
def test_x_forwarded_for_is_believed_from_a_configured_proxy(http_desk: Desk) -> None:
    http_desk.app.state.settings.trusted_proxies = ["127.0.0.1"]
    with served(http_desk) as base:
        for _attempt in range(5):
            assert (
                browser_login(base, "faktura.halland", "fel", **{"X-Forwarded-For": "10.1.1.1"}).status_code
                == 401
            )
        assert browser_login(base, "faktura.halland", **{"X-Forwarded-For": "10.1.1.1"}).status_code == 429
        # The real user behind the same proxy, from another address, gets in.
        assert browser_login(base, "faktura.halland", **{"X-Forwarded-For": "10.2.2.2"}).status_code == 303


def _client_at(desk: Desk, address: str) -> TestClient:
    return TestClient(desk.app, base_url="https://testserver", client=(address, 40000))


def test_an_attacker_cannot_lock_the_real_user_out(desk: Desk) -> None:
    attacker = _client_at(desk, "203.0.113.66")
    for attempt in range(8):
        assert login(attacker, "faktura.halland", f"fel-{attempt}").status_code in (401, 429)
    assert login(attacker, "faktura.halland").status_code == 429
    victim = _client_at(desk, "198.51.100.7")
    assert login(victim, "faktura.halland").status_code == 303
    assert victim.get(f"{API}/me").json()["username"] == "faktura.halland"


def test_the_throttle_backs_off_exponentially_and_is_shared_by_processes(desk: Desk) -> None:
    from vembetalar.web.app import create_app

    throttle = desk.app.state.login_throttle
    now = [dt.datetime(2025, 9, 15, 12, 0, tzinfo=dt.UTC)]
    throttle.now = lambda: now[0]
    client = desk.client()

    def step(seconds: float) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    for attempt in range(5):
        assert login(client, "lakare.vgr", f"fel-{attempt}").status_code == 401
        step(1)
    step(-1)
    blocked = login(client, "lakare.vgr")
    assert blocked.status_code == 429 and "1 sekunder" in blocked.text
    # Another worker process (a second app on the same database) sees the same count.
    other = create_app(desk.app.state.settings)
    other.state.login_throttle.now = throttle.now
    try:
        assert login(TestClient(other, base_url="https://testserver"), "lakare.vgr").status_code == 429
    finally:
        other.state.db_engine.dispose()
    for wait in (1, 2, 4, 8):
        step(wait - 0.5)
        assert login(client, "lakare.vgr").status_code == 429, wait
        step(0.6)
        assert login(client, "lakare.vgr", "fel-igen").status_code == 401, wait  # allowed, and wrong
    # Failures older than the window are pruned from the table.
    step(throttle.window.total_seconds() + 60)
    assert login(client, "someone.else", "fel").status_code == 401
    with desk.app.state.sessions() as db:
        ats = db.scalars(sql_select(LoginFailure.at)).all()
    assert ats and all((a if a.tzinfo else a.replace(tzinfo=dt.UTC)) >= now[0] - throttle.window for a in ats)
    assert login(client, "lakare.vgr").status_code == 303


@on_sqlite
def test_one_address_trying_many_names_is_capped(desk: Desk) -> None:
    desk.app.state.login_throttle.address_attempts = 6
    client = _client_at(desk, "192.0.2.5")
    for n in range(6):
        assert login(client, f"gissning{n}", "fel").status_code == 401
    assert login(client, "lakare.vgr").status_code == 429
    assert login(_client_at(desk, "192.0.2.6"), "lakare.vgr").status_code == 303


# == 3. logs ======================================================================================


class Capture(logging.Handler):
    """Every record, fully formatted with its traceback, as a log file would get it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_SIDE):
            self.lines.append(self.format(record))


LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "vembetalar")
#: The test's own HTTP client logs the URLs it calls; that is not the server's log.
CLIENT_SIDE = ("httpx", "httpcore")
SECRET_NOTE = "hemlig-anteckning-om-patienten"


def _add_boom(desk: Desk) -> None:
    """A test-only route that fails the way a real bug would: an exception whose text holds a
    personnummer (as an IntegrityError's SQL parameters would)."""

    @desk.app.get("/api/v1/test-boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError(f"INSERT failed [parameters: ('{PNR}', '{SECRET_NOTE}')]")


def _provoke(base: str, token: str) -> dict[str, httpx.Response]:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=30) as client:
        return {
            "boom": client.get(f"{API}/test-boom?patient={PNR}", headers=auth),
            "bad json": client.post(f"{API}/cases", content=f'{{"patient_id": "{PNR}", ', headers=auth),
            "422": client.post(
                f"{API}/cases",
                content=json.dumps({"case": {**HALLAND_AT_VGR, "date": PNR}, "note": SECRET_NOTE}),
                headers=auth,
            ),
            "bad pnr": client.post(
                f"{API}/cases",
                content=json.dumps({"case": HALLAND_AT_VGR, "patient_id": PNR_DIGITS + "0"}),
                headers=auth,
            ),
            "surrogate": client.post(
                f"{API}/cases",
                content=b'{"case": '
                + json.dumps(HALLAND_AT_VGR).encode()
                + b', "note": "'
                + SECRET_NOTE.encode()
                + b'\\ud800"}',
                headers=auth,
            ),
            "query": client.get(f"{API}/cases?payer={PNR}", headers=auth),
        }


def _assert_answers(answers: dict[str, httpx.Response]) -> str:
    assert answers["boom"].status_code == 500
    error_id = answers["boom"].json()["detail"].split("fel-id ", 1)[1].split(")", 1)[0]
    assert len(error_id) == 8
    assert answers["bad json"].status_code == 400
    assert answers["422"].status_code == 422
    assert answers["bad pnr"].status_code == 422
    assert_error(answers["surrogate"], 422, "note:")
    return error_id


def _assert_clean(text: str, error_id: str) -> None:
    for secret in (PNR, PNR_DIGITS, SECRET_NOTE, "payer=", "parameters", "Traceback"):
        assert secret not in text, f"{secret!r} reached the log:\n{text}"
    assert error_id in text and "RuntimeError" in text, text


@on_sqlite
def test_no_request_data_reaches_any_log(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    _add_boom(desk)
    capture = Capture()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    with served(desk, access_log=True) as base:
        # After uvicorn has applied its logging configuration, which replaces handlers.
        before = [(lg, lg.level) for lg in loggers]
        for lg in loggers:
            lg.addHandler(capture)
            lg.setLevel(logging.DEBUG)
        caplog.set_level(logging.DEBUG)
        for name in LOGGERS[1:]:
            caplog.set_level(logging.DEBUG, logger=name)
        try:
            answers = _provoke(base, desk.tokens["lakare.vgr"])
        finally:
            for lg, level in before:
                lg.removeHandler(capture)
                lg.setLevel(level)
    error_id = _assert_answers(answers)
    caught = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith(CLIENT_SIDE)]
    text = "\n".join(capture.lines + caught)
    _assert_clean(text, error_id)


SERVER_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from webapp import build_app
from vembetalar.web.server import run
app = build_app({url!r}, __import__("pathlib").Path({var!r}))
@app.app.get("/api/v1/test-boom", include_in_schema=False)
def boom() -> None:
    raise RuntimeError("INSERT failed [parameters: ('{pnr}', '{note}')]")
open({token_file!r}, "w").write(app.tokens["lakare.vgr"])
run(app.app, "127.0.0.1", {port})
"""


@on_sqlite
def test_a_real_server_process_prints_no_request_data(db_url: str, tmp_path: Path) -> None:
    """``web.server.run`` (what ``vembetalar serve`` calls) in its own process, access log on:
    nothing of the requests reaches its stdout or stderr."""
    port = free_port()
    token_file = tmp_path / "token"
    script = SERVER_SCRIPT.format(
        tests=str(Path(__file__).parent),
        url=db_url,
        var=str(tmp_path / "var"),
        pnr=PNR,
        note=SECRET_NOTE,
        token_file=str(token_file),
        port=port,
    )
    env = {**os.environ, "VEMBETALAR_ACCESS_LOG": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if token_file.exists() and httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.stderr else ""
            )
            time.sleep(0.1)
        answers = _provoke(base, token_file.read_text())
        time.sleep(0.3)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    error_id = _assert_answers(answers)
    _assert_clean(out + "\n" + err, error_id)
    assert f"POST {API}/cases" in out  # the access log is on, without query strings
    assert f"GET {API}/cases " in out or f"GET {API}/cases HTTP" in out


def test_a_lone_surrogate_is_a_clean_422(shared_desk: Desk) -> None:
    api = shared_desk.api("lakare.vgr")
    headers = {"content-type": "application/json"}
    case = json.dumps(HALLAND_AT_VGR).encode()
    note = api.post(f"{API}/cases", content=b'{"case": ' + case + b', "note": "x\\udc00"}', headers=headers)
    assert_error(note, 422, "note:")
    field = case.replace(b'"home_region": "13"', b'"home_region": "\\ud800"')
    decision = api.post(f"{API}/decisions", content=field, headers=headers)
    assert_error(decision, 422, "patient.home_region:")
    # A proper pair (an emoji) is text and fine.
    pair = api.post(
        f"{API}/cases", content=b'{"case": ' + case + b', "note": "\\ud83d\\ude00"}', headers=headers
    )
    assert pair.status_code == 201, pair.text


# == 4. sessions ==================================================================================


def _cookie(client: TestClient) -> str:
    value = client.cookies.get("vembetalar_session")
    assert value
    return value


def _copy(desk: Desk, cookie: str) -> TestClient:
    thief = desk.client()
    thief.headers["Cookie"] = f"vembetalar_session={cookie}"
    return thief


def test_the_cookie_carries_only_a_session_id_and_logout_ends_it(desk: Desk) -> None:
    client = desk.client()
    assert login(client, "lakare.vgr").status_code == 303
    cookie = _cookie(client)
    payload = json.loads(base64.b64decode(cookie.split(".", 1)[0] + "=="))
    assert set(payload) == {"sid", "csrf"}
    thief = _copy(desk, cookie)
    assert thief.get(f"{API}/me").status_code == 200
    token = page_csrf(client)
    out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert_error(thief.get(f"{API}/me"), 401)
    assert thief.get("/cases", follow_redirects=False).headers["location"] == "/login"
    with desk.app.state.sessions() as db:
        rows = db.scalars(sql_select(WebSession)).all()
    assert len(rows) == 1 and rows[0].ended_at is not None
    assert rows[0].id_hash != payload["sid"]  # only its SHA-256 is stored


def _cli(db_url: str, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli_app, list(args), input=stdin, env={URL_ENV: db_url, "COLUMNS": "200"})


def test_a_password_change_ends_every_session_of_the_user(desk: Desk, db_url: str) -> None:
    first, second, bystander = desk.client(), desk.client(), desk.client()
    for client, name in ((first, "lakare.vgr"), (second, "lakare.vgr"), (bystander, "admin.vgr")):
        assert login(client, name).status_code == 303
    thief = _copy(desk, _cookie(first))
    result = _cli(db_url, "users", "set-password", "lakare.vgr", stdin="ett-nytt-långt-lösenord\n")
    assert result.exit_code == 0, result.output
    assert "2 inloggade sessioner" in result.output
    for client in (first, second, thief):
        assert_error(client.get(f"{API}/me"), 401)
    assert bystander.get(f"{API}/me").status_code == 200
    assert login(desk.client(), "lakare.vgr").status_code == 401
    assert login(desk.client(), "lakare.vgr", "ett-nytt-långt-lösenord").status_code == 303
    short = _cli(db_url, "users", "set-password", "lakare.vgr", stdin="kort\n")
    assert short.exit_code == 2 and "minst 12" in short.output


def test_deactivation_ends_sessions_and_tokens(desk: Desk, db_url: str) -> None:
    client = desk.client()
    assert login(client, "lakare.vgr").status_code == 303
    thief = _copy(desk, _cookie(client))
    result = _cli(db_url, "users", "deactivate", "lakare.vgr")
    assert result.exit_code == 0, result.output
    for who in (client, thief, desk.api("lakare.vgr")):
        assert_error(who.get(f"{API}/me"), 401)
    assert login(desk.client(), "lakare.vgr").status_code == 401
    assert _cli(db_url, "users", "deactivate", "ingen.alls").exit_code == 2


# == 5. audit, tokens, files, headers, docs =======================================================


def _audit(desk: Desk, admin: str) -> list[dict[str, Any]]:
    response = desk.api(admin).get(f"{API}/audit")
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_denied_attempts_are_audited_for_the_actors_admins(desk: Desk) -> None:
    skane_case = create(desk.api("hjalpmedel.skane"), HEARING_AID_IN_SKANE)["id"]
    halland = desk.api("faktura.halland")
    assert_error(halland.get(f"{API}/cases/{skane_case}"), 404)  # another organisation's case
    assert_error(halland.get(f"{API}/audit"), 403)  # not an admin
    client = desk.client()
    login(client, "lakare.vgr")
    assert_error(client.post(f"{API}/cases", json={"case": HALLAND_AT_VGR}), 403)  # no CSRF token
    assert login(desk.client(), "ingen.sadan", "fel").status_code == 401  # unknown user name

    halland_rows = {(r["username"], r["action"]): r for r in _audit(desk, "admin.halland")}
    denied = halland_rows[("faktura.halland", "denied.not_found")]
    assert denied["organisation_id"] == "region:13" and skane_case in denied["detail"]
    assert denied["case_id"] is None  # the probed case's parties are not told who probed
    assert ("faktura.halland", "denied.forbidden") in halland_rows
    vgr_rows = {(r["username"], r["action"]): r for r in _audit(desk, "admin.vgr")}
    assert vgr_rows[("lakare.vgr", "denied.csrf")]["detail"] == f"POST {API}/cases"
    for rows in (halland_rows, vgr_rows):  # every admin sees it, without the typed name
        unknown = rows[("-", "login.failed")]
        assert unknown["organisation_id"] is None and "ingen.sadan" not in unknown["detail"]
        assert unknown["detail"].startswith("okänt användarnamn, från ")


def test_users_list_create_and_revoke_their_own_tokens(desk: Desk, db_url: str) -> None:
    api = desk.api("lakare.vgr")
    listed = api.get(f"{API}/tokens").json()
    assert [t["label"] for t in listed] == ["test"] and listed[0]["active"]
    made = api.post(f"{API}/tokens", json={"label": "skript", "days": 30})
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["token"].startswith("vbt_")
    expires = dt.datetime.fromisoformat(new["expires_at"])
    assert dt.timedelta(days=29) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    assert all("token" not in t for t in api.get(f"{API}/tokens").json())  # shown once only
    fresh = desk.client()
    fresh.headers["Authorization"] = f"Bearer {new['token']}"
    assert fresh.get(f"{API}/me").json()["username"] == "lakare.vgr"

    # Nobody revokes another user's token; a token does not revoke itself.
    assert_error(desk.api("admin.vgr").delete(f"{API}/tokens/{new['id']}"), 404)
    assert_error(fresh.delete(f"{API}/tokens/{new['id']}"), 409)
    assert api.delete(f"{API}/tokens/{new['id']}").status_code == 204
    assert_error(fresh.get(f"{API}/me"), 401)
    assert not next(t for t in api.get(f"{API}/tokens").json() if t["id"] == new["id"])["active"]

    # Expired → 401; the default expiry is 90 days.
    default = api.post(f"{API}/tokens", json={"label": "standard"}).json()
    assert dt.timedelta(days=89) < dt.datetime.fromisoformat(default["expires_at"]) - dt.datetime.now(dt.UTC)
    with desk.app.state.sessions() as db:
        row = db.get(ApiToken, default["id"])
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db.commit()
    expired = desk.client()
    expired.headers["Authorization"] = f"Bearer {default['token']}"
    assert_error(expired.get(f"{API}/me"), 401)

    # The same from the command line.
    listing = _cli(db_url, "users", "tokens", "lakare.vgr")
    assert listing.exit_code == 0 and "återkallad" in listing.output and "utgången" in listing.output
    first = listed[0]["id"]
    assert _cli(db_url, "users", "revoke-token", str(first)).exit_code == 0
    assert_error(api.get(f"{API}/me"), 401)
    assert _cli(db_url, "users", "revoke-token", "999999").exit_code == 2


def test_a_legacy_token_without_expiry_ends_after_90_days(desk: Desk) -> None:
    with desk.app.state.sessions() as db:
        user = db.scalars(sql_select(User).where(User.username == "mas.karlstad")).one()
        row = db.scalars(sql_select(ApiToken).where(ApiToken.user_id == user.id)).one()
        assert row.expires_at is None
        row.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
        db.commit()
    assert_error(desk.api("mas.karlstad").get(f"{API}/me"), 401)


def test_the_sqlite_file_and_var_folder_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    engine = make_engine(f"sqlite:///{var / 'vembetalar.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
        conn.commit()
    engine.dispose()
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "vembetalar.db").stat().st_mode) == 0o600
    loose = tmp_path / "loose.db"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    make_engine(f"sqlite:///{loose}").dispose()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@on_sqlite
def test_hsts_only_when_cookies_are_secure(desk: Desk, db_url: str, tmp_path: Path) -> None:
    assert desk.app.state.settings.cookie_secure
    hsts = desk.client().get("/login").headers.get("strict-transport-security", "")
    assert hsts.startswith("max-age=31536000")
    plain = build_app(db_url.replace("vembetalar.db", "plain.db"), tmp_path / "plain", cookie_secure=False)
    try:
        assert "strict-transport-security" not in plain.client().get("/login").headers
    finally:
        plain.app.state.db_engine.dispose()


def test_the_openapi_example_is_a_test_personnummer(shared_desk: Desk) -> None:
    from vembetalar.web.demo import CASES

    text = shared_desk.client().get(f"{API}/openapi.json").text
    assert "19121212-1212" in text
    for *_, patient_id, _, _ in CASES:
        if patient_id:
            assert patient_id not in text


def test_the_docs_page_loads_nothing_from_elsewhere(shared_desk: Desk) -> None:
    client = shared_desk.client()
    page = client.get(f"{API}/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    assert "<script>" not in page.text  # no inline script: every <script> has a src
    assert page.text.count("<script") == page.text.count("<script src=")
    for path in (
        "/api/v1/docs/assets/swagger-ui-bundle.js",
        "/api/v1/docs/assets/swagger-ui.css",
        "/static/swagger-init.js",
    ):
        assert client.get(path).status_code == 200, path
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src" not in csp and "unsafe-eval" not in csp
