"""How uvicorn runs the app: which proxies are believed, and logging that carries no request data.

A request may carry a personnummer in its body, its query string or an exception's message
(SQL parameters, validation input). So:

- uvicorn's error logger never keeps an exception's traceback or message (``NoDetails``); the
  app's own 500 handler logs an error id, the exception's type and the route, nothing else;
- its access log (off unless $VEMBETALAR_ACCESS_LOG=1) writes the path without the query string;
- ``X-Forwarded-For`` is believed only from $VEMBETALAR_TRUSTED_PROXIES, never by default, so a
  client cannot pick the address the login throttle counts.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from vembetalar.web.settings import Settings


class NoDetails(logging.Filter):
    """Drop tracebacks and exception text from a record (they may hold request data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


class NoQuery(logging.Filter):
    """uvicorn's access record is (client, method, path with query, version, status): cut the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_details": {"()": "vembetalar.web.server.NoDetails"},
        "no_query": {"()": "vembetalar.web.server.NoQuery"},
    },
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["no_details"],
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["no_query", "no_details"],
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO", "filters": ["no_details"]},
        "uvicorn.access": {
            "handlers": ["access"],
            "level": "INFO",
            "propagate": False,
            "filters": ["no_query", "no_details"],
        },
        "vembetalar": {"handlers": ["default"], "level": "INFO", "propagate": False},
    },
}


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that matter for security; ``serve`` and the tests use the same."""
    trusted = list(settings.trusted_proxies)
    return {
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_config": LOG_CONFIG,
        "access_log": settings.access_log,
        "server_header": False,
    }


def run(application: FastAPI, host: str, port: int) -> None:
    import uvicorn

    settings: Settings = application.state.settings
    level = "info" if settings.access_log else "warning"  # the access log writes at info
    uvicorn.run(application, host=host, port=port, log_level=level, **server_options(settings))
