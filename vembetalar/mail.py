"""Outgoing e-mail through the SMTP server the deployment configures, and nothing else.

Nothing is ever sent unless ``VEMBETALAR_SMTP_HOST`` is set: the demo shows the message instead.
The connection is always encrypted (STARTTLS, or TLS from the start), and a server that does not
offer STARTTLS is refused rather than used in clear text. TLS protects the way to *our* server
only; whether the message then travels encrypted to the recipient is the server's business. An
agreement that asks for encrypted e-mail (seed 001: "krypterad e-post") is therefore only used
when the deployment says its server guarantees it (``VEMBETALAR_SMTP_ENCRYPTED_DELIVERY=1``, e.g. a
secure-mail gateway or enforced TLS to the recipient's domain); otherwise the desk says so and
offers the PDF for fax or post.

    VEMBETALAR_SMTP_HOST, VEMBETALAR_SMTP_PORT (587), VEMBETALAR_SMTP_SECURITY (starttls | tls),
    VEMBETALAR_SMTP_USER, VEMBETALAR_SMTP_PASSWORD, VEMBETALAR_SMTP_FROM,
    VEMBETALAR_SMTP_CA_FILE (a CA bundle to trust instead of the system's),
    VEMBETALAR_SMTP_ENCRYPTED_DELIVERY (1 when the server guarantees encrypted delivery)
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid


class MailError(RuntimeError):
    """The message could not be sent; the text says why, in Swedish, without its content."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str = "vembetalar@localhost"
    ca_file: str | None = None
    encrypted_delivery: bool = False
    timeout: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MailSettings | None:
        """The configured server, or None when none is configured (then nothing is ever sent)."""
        env = os.environ if env is None else env
        host = env.get("VEMBETALAR_SMTP_HOST", "").strip()
        if not host:
            return None
        security = env.get("VEMBETALAR_SMTP_SECURITY", "starttls").strip().lower()
        if security not in ("starttls", "tls"):
            raise MailError(
                "VEMBETALAR_SMTP_SECURITY ska vara starttls eller tls (okrypterad SMTP används inte)"
            )
        try:
            port = int(env.get("VEMBETALAR_SMTP_PORT", "587" if security == "starttls" else "465"))
        except ValueError:
            raise MailError("VEMBETALAR_SMTP_PORT ska vara ett portnummer") from None
        return cls(
            host=host,
            port=port,
            security=security,
            user=env.get("VEMBETALAR_SMTP_USER") or None,
            password=env.get("VEMBETALAR_SMTP_PASSWORD") or None,
            sender=env.get("VEMBETALAR_SMTP_FROM") or "vembetalar@localhost",
            ca_file=env.get("VEMBETALAR_SMTP_CA_FILE") or None,
            encrypted_delivery=env.get("VEMBETALAR_SMTP_ENCRYPTED_DELIVERY", "") in ("1", "true", "ja"),
        )

    def why_not_encrypted(self) -> str | None:
        """Why this server cannot be used where the agreement asks for encrypted e-mail."""
        if self.encrypted_delivery:
            return None
        return (
            f"e-postservern {self.host} är inte konfigurerad som krypterad e-post hela vägen till "
            "mottagaren (TLS skyddar bara vägen till er egen server); avtalet kräver krypterad "
            "e-post, så skicka i stället med fax eller post (PDF)"
        )


def message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="vembetalar")
    mail.set_content(body)
    return mail


def send(settings: MailSettings, mail: EmailMessage) -> None:
    """Send over an encrypted connection, or raise MailError. Never logs the content."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        if settings.security == "tls":
            with smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            ) as smtp:
                _deliver(smtp, settings, mail)
        else:
            with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        f"e-postservern {settings.host} erbjuder inte STARTTLS; "
                        "okrypterad e-post skickas inte"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
                _deliver(smtp, settings, mail)
    except MailError:
        raise
    except ssl.SSLError as exc:
        raise MailError(f"krypteringen mot {settings.host} misslyckades ({exc.reason or 'TLS'})") from None
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"e-postservern {settings.host} godtog inte inloggningen") from None
    except smtplib.SMTPRecipientsRefused:
        raise MailError("e-postservern vägrade mottagaradressen") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(
            f"kunde inte skicka via {settings.host}:{settings.port} ({type(exc).__name__})"
        ) from None


def _deliver(smtp: smtplib.SMTP, settings: MailSettings, mail: EmailMessage) -> None:
    if settings.user:
        smtp.login(settings.user, settings.password or "")
    smtp.send_message(mail)
