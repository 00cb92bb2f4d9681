"""Load benchmark of the case desk API on loopback: decisions and the case list.

Starts the real server (uvicorn, SQLite in a temp dir, demo data) in a separate process, then
drives it with an asyncio httpx client: 50 concurrent clients for a fixed duration per endpoint,
in two shapes —

* **paced**: each client sends a request, then waits (think time), as staff at 50 desks would;
  latency here is the service time a user feels;
* **saturating**: each client sends its next request as soon as the last one returns, which
  finds the throughput ceiling; latency then is mostly queueing (Little's law: 50 / rps).

    .venv/bin/python bench/api_load.py [--seconds 15] [--clients 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
        [sys.executable, "-m", "uvicorn", "--factory", "vembetalar.web.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
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


async def run_load(
    url: str, token: str, method: str, path: str, body: object, clients: int, seconds: float, think: float
) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    payload = json.dumps(body).encode() if body is not None else None
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=10) as client:
        stop = time.perf_counter() + seconds

        async def one_client(offset: float) -> None:
            nonlocal errors
            await asyncio.sleep(offset)
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await client.request(method, path, content=payload)
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors += 1
                if think:
                    await asyncio.sleep(think)

        await asyncio.gather(*(one_client(think * i / clients) for i in range(clients)))
    return latencies, errors, len(latencies)


def report(name: str, latencies: list[float], errors: int, seconds: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    line = (
        f"| {name} | {len(ms) / seconds:,.0f} | {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} | {ms[-1]:.1f} | {errors} |"
    )
    print(line, flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--think", type=float, default=0.25, help="seconds between a paced client's requests")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server, token = start_server(Path(tmp), port, args.workers)
        try:
            url = f"http://127.0.0.1:{port}"
            print(f"server: uvicorn, {args.workers} workers, SQLite; {args.clients} clients, {args.seconds:.0f} s each")
            print("| load | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |")
            print("|---|---|---|---|---|---|---|")
            runs = [
                ("POST /api/v1/decisions, paced", "POST", "/api/v1/decisions", DECISION, args.think),
                ("GET /api/v1/cases, paced", "GET", "/api/v1/cases?limit=20", None, args.think),
                ("POST /api/v1/decisions, saturating", "POST", "/api/v1/decisions", DECISION, 0.0),
                ("GET /api/v1/cases, saturating", "GET", "/api/v1/cases?limit=20", None, 0.0),
            ]
            for name, method, path, body, think in runs:
                asyncio.run(run_load(url, token, method, path, body, args.clients, 2, think))  # warm-up
                latencies, errors, _ = asyncio.run(
                    run_load(url, token, method, path, body, args.clients, args.seconds, think)
                )
                report(name, latencies, errors, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
