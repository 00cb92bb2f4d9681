"""A real SMTP server on loopback for tests (aiosmtpd), with STARTTLS from a throwaway CA
(trustme); the test reads what arrived."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class MailServer:
    host: str
    port: int
    ca_file: str
    inbox: Inbox

    def env(self, *, encrypted_delivery: bool = True) -> dict[str, str]:
        return {
            "VEMBETALAR_SMTP_HOST": self.host,
            "VEMBETALAR_SMTP_PORT": str(self.port),
            "VEMBETALAR_SMTP_SECURITY": "starttls",
            "VEMBETALAR_SMTP_CA_FILE": self.ca_file,
            "VEMBETALAR_SMTP_FROM": "vembetalar@region.test",
            "VEMBETALAR_SMTP_ENCRYPTED_DELIVERY": "1" if encrypted_delivery else "0",
        }


@contextmanager
def smtp_server(tmp_path: Path, *, tls: bool = True) -> Iterator[MailServer]:
    """STARTTLS required when ``tls``; without it the server offers no encryption at all."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = Inbox()
    options: dict[str, Any] = {"tls_context": context, "require_starttls": True} if tls else {}
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield MailServer("127.0.0.1", port, str(ca_file), inbox)
    finally:
        controller.stop()
