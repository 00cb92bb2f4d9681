"""Load benchmark of the case desk API on loopback: decisions and the case list.

Starts the real server (uvicorn, SQLite in a temp dir, demo data) in a separate process, then
drives it with hey (a Go load generator): 50 concurrent clients for a fixed duration per endpoint,
in two shapes —

* **paced**: each client sends at most --rate requests per second, as staff at 50 desks would;
  latency here is the service time a user feels;
* **saturating**: each client sends its next request as soon as the last one returns, which
  finds the throughput ceiling; latency then is mostly queueing (Little's law: 50 / rps).

    .venv/bin/python bench/api_load.py [--seconds 15] [--clients 50] [--workers 2] [--rate 4]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

DECISION = {
    "date": "2025-09-15",
    "kind": "drug_exception",
    "patient": {"home_region": "13", "country": "SE"},
    "care": {"region": "14", "referral": False},
    "product": {"area": "drug", "nt_council": "await"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workdir: Path, port: int, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "VEMBETALAR_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "VEMBETALAR_SECRET_KEY": "bench-secret",
        "VEMBETALAR_VAR": str(workdir),
    }
    seed = (
        "from vembetalar.web.app import create_app; from vembetalar.web.demo import seed; "
        "app = create_app(); db = app.state.sessions(); "
        "logins, token = seed(db, app.state.engine); print(token)"
    )
    token = subprocess.run([sys.executable, "-c", seed], env=env, check=True, capture_output=True, text=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "vembetalar.web.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return server, token.stdout.strip().splitlines()[-1]
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("servern startade inte")


def ensure_hey() -> str:
    """The load generator: hey (Go, Debian package) keeps the client's CPU cost small, so the two
    cores measure the server, not a Python client."""
    path = shutil.which("hey")
    if path is None and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "hey"],
            check=False,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = shutil.which("hey")
    if path is None:
        raise SystemExit("bench/api_load.py behöver 'hey' (apt-get install hey)")
    return path


def _hey_command(
    hey: str, url: str, token: str, method: str, body: object, clients: int, seconds: float
) -> list[str]:
    command = [
        hey,
        "-z",
        f"{seconds}s",
        "-c",
        str(clients),
        "-m",
        method,
        "-o",
        "csv",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if body is not None:
        command += ["-T", "application/json", "-d", json.dumps(body)]
    return command


def _parse(output: str) -> tuple[list[float], int]:
    latencies, errors = [], 0
    for row in csv.DictReader(io.StringIO(output)):
        latencies.append(float(row["response-time"]))
        errors += int(row["status-code"]) >= 400
    return latencies, errors


def run_load(
    hey: str, url: str, token: str, method: str, body: object, clients: int, seconds: float, rate: float
) -> tuple[list[float], int]:
    """``rate`` = requests per second per client, 0 = as fast as possible.

    Paced clients are separate hey processes started at staggered moments: hey's own rate limit
    ticks all its workers together, which would turn 50 desks into one burst of 50.
    """
    base = _hey_command(hey, url, token, method, body, 1 if rate else clients, seconds)
    if not rate:
        result = subprocess.run([*base, url], check=True, capture_output=True, text=True)
        return _parse(result.stdout)
    processes = []
    for _ in range(clients):
        time.sleep(1 / (rate * clients))
        processes.append(
            subprocess.Popen(
                [*base, "-q", str(rate), url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        )
    latencies, errors = [], 0
    for process in processes:
        out, _ = process.communicate()
        some, bad = _parse(out)
        latencies += some
        errors += bad
    return latencies, errors


def report(name: str, latencies: list[float], errors: int, seconds: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    line = (
        f"| {name} | {len(ms) / seconds:,.0f} | {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} | {ms[-1]:.1f}"
        f" | {errors} |"
    )
    print(line, flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=2, help="requests per second per paced client")
    args = parser.parse_args()
    hey = ensure_hey()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server, token = start_server(Path(tmp), port, args.workers)
        try:
            url = f"http://127.0.0.1:{port}"
            print(
                f"server: uvicorn, {args.workers} workers, SQLite; client: hey, {args.clients} clients, "
                f"{args.seconds:.0f} s each; paced = {args.rate:g} requests/s per client"
            )
            print("| load | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |")
            print("|---|---|---|---|---|---|---|")
            runs = [
                ("POST /api/v1/decisions, paced", "POST", "/api/v1/decisions", DECISION, args.rate),
                ("GET /api/v1/cases, paced", "GET", "/api/v1/cases?limit=20", None, args.rate),
                ("POST /api/v1/decisions, saturating", "POST", "/api/v1/decisions", DECISION, 0.0),
                ("GET /api/v1/cases, saturating", "GET", "/api/v1/cases?limit=20", None, 0.0),
            ]
            for name, method, path, body, rate in runs:
                run_load(hey, url + path, token, method, body, args.clients, 2, rate)  # warm-up
                latencies, errors = run_load(
                    hey, url + path, token, method, body, args.clients, args.seconds, rate
                )
                report(name, latencies, errors, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
