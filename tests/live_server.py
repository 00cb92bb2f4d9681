"""The real app under uvicorn on loopback, for tests that need a socket (browsers, raw HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from pg_cluster import free_port

from vembetalar.web.server import server_options


@contextmanager
def served(app: FastAPI, **config: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread on 127.0.0.1 and a free port, with the options
    ``vembetalar serve`` uses (``config`` overrides them); yields the base URL, stops on exit."""
    options = {"log_level": "warning", **server_options(app.state.settings), **config}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the app did not start under uvicorn within 15 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
