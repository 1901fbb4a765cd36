"""The ways out of notifikasi: SMTP, signed webhook POSTs, and SMS / WhatsApp through a
provider adapter (apprise) configured by URL. Each call is bounded by a timeout; blocking
libraries are fine because the process is monkey-patched by eventlet.

A sender raises on failure (the worker records and retries); ``PermanentDeliveryError``
means no retry can help."""

from __future__ import annotations

import json
import smtplib
import ssl
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import requests

with warnings.catch_warnings():  # apprise's plugins import imghdr (deprecated) lazily:
    warnings.simplefilter("ignore", DeprecationWarning)  # import it once here, quietly
    import imghdr  # noqa: F401

    import apprise

from services.notifikasi import domain
from services.notifikasi.domain import PermanentDeliveryError


def as_list(value: Any) -> list[str]:
    """A list from config: a YAML list, or a comma-separated string."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


SMTP_TLS_MODES = {
    "none": "none", "false": "none", "0": "none", "no": "none",
    "starttls": "starttls", "true": "starttls", "1": "starttls", "yes": "starttls",
    "ssl": "ssl", "tls": "ssl", "smtps": "ssl",
}  # fmt: skip


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"  # none | starttls | ssl
    sender: str = "Bersinar BNNP Bengkulu <no-reply@bersinar.local>"
    user: str = ""
    password: str = ""
    timeout: float = 10.0


class EmailChannel:
    """E-mail over SMTP. The connection stays open from one message to the next (a round
    of the delivery worker uses one channel per sender and closes it at the end); after
    any failure it is dropped and the next message opens a new one."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def send(
        self, delivery_id: str, event_type: str, addresses: list[str], subject: str, body: str
    ) -> None:
        if not addresses:
            raise PermanentDeliveryError("NO_ADDRESS", "penerima tidak punya alamat email")
        s = self.settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = ", ".join(addresses)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        # The same id on every attempt: a receiver (or a person) can tell a resend.
        message["Message-ID"] = f"<{delivery_id}@bersinar>"
        message[domain.DELIVERY_HEADER] = delivery_id
        message[domain.EVENT_HEADER] = event_type
        message.set_content(body, charset="utf-8")
        reused = self._client is not None
        try:
            self._send_message(message)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            # the server closed a connection that lay idle: once more on a new one
            self._send_message(message)

    def _send_message(self, message: EmailMessage) -> None:
        try:
            self._connection().send_message(message)
        except Exception:
            self.close()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._client is None:
            s = self.settings
            if s.tls == "ssl":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            try:
                if s.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.user:
                    client.login(s.user, s.password)
            except Exception:
                client.close()
                raise
            self._client = client
        return self._client

    def close(self) -> None:
        """Say goodbye to the server (quietly if it is gone) and forget the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


class WebhookChannel:
    def __init__(self, connect_timeout: float = 3.0, read_timeout: float = 10.0):
        self.timeout = (connect_timeout, read_timeout)

    @staticmethod
    def body(envelope: dict[str, Any]) -> bytes:
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()

    def send(
        self,
        delivery_id: str,
        url: str,
        secret: str,
        envelope: dict[str, Any],
        now: float | None = None,
    ) -> None:
        body = self.body(envelope)
        timestamp = int(now if now is not None else time.time())
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Bersinar-Webhook/1",
                domain.SIGNATURE_HEADER: domain.signature(secret, timestamp, body),
                domain.DELIVERY_HEADER: delivery_id,
                domain.EVENT_HEADER: envelope["event_type"],
            },
            timeout=self.timeout,
            allow_redirects=False,
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code} dari penerima webhook")


class PhoneChannel:
    """SMS or WhatsApp through apprise. The URL names the provider and holds ``{to}``
    where the number goes, e.g. ``twilio://SID:TOKEN@FROM/{to}`` or, for a provider
    behind a plain JSON API, ``json://sms.example/send?:to={to}``."""

    def __init__(self, name: str, url_template: str, timeout: float = 10.0):
        self.name = name
        self.url_template = url_template
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.url_template)

    def url_for(self, number: str) -> str:
        url = self.url_template.replace("{to}", quote(number, safe=""))
        separator = "&" if "?" in url else "?"
        seconds = max(1, int(self.timeout))
        return f"{url}{separator}cto={seconds}&rto={seconds}"

    def send(self, numbers: list[str], text: str) -> None:
        if not self.configured:
            raise PermanentDeliveryError(
                "CHANNEL_NOT_CONFIGURED", f"kanal {self.name} belum diatur"
            )
        if not numbers:
            raise PermanentDeliveryError("NO_ADDRESS", f"penerima tidak punya nomor {self.name}")
        failed = []
        for number in numbers:
            notifier = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
            if not notifier.add(self.url_for(number)):
                raise PermanentDeliveryError(
                    "CHANNEL_NOT_CONFIGURED", f"URL penyedia {self.name} tidak sah"
                )
            if not notifier.notify(body=text, title=""):
                failed.append(number)
        if failed:
            raise RuntimeError(
                f"penyedia {self.name} menolak atau tidak terjangkau "
                f"({len(failed)} dari {len(numbers)} nomor)"
            )


@dataclass
class Channels:
    email: EmailChannel
    webhook: WebhookChannel
    sms: PhoneChannel
    whatsapp: PhoneChannel

    @contextmanager
    def for_round(self) -> Iterator[Channels]:
        """Channels for one sender of one round of the delivery worker: an e-mail channel
        of its own, whose connection is closed when the round ends."""
        email = EmailChannel(self.email.settings)
        try:
            yield replace(self, email=email)
        finally:
            email.close()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Channels:
        smtp = SmtpSettings(
            host=str(config.get("SMTP_HOST") or "127.0.0.1"),
            port=int(config.get("SMTP_PORT") or 25),
            tls=SMTP_TLS_MODES.get(str(config.get("SMTP_TLS") or "none").lower(), "none"),
            sender=str(config.get("SMTP_SENDER") or SmtpSettings.sender),
            user=str(config.get("SMTP_USER") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            timeout=float(config.get("SMTP_TIMEOUT") or 10),
        )
        return cls(
            email=EmailChannel(smtp),
            webhook=WebhookChannel(read_timeout=float(config.get("WEBHOOK_TIMEOUT") or 10)),
            sms=PhoneChannel("SMS", str(config.get("SMS_URL") or "")),
            whatsapp=PhoneChannel("WhatsApp", str(config.get("WHATSAPP_URL") or "")),
        )


CONTACT_FIELDS = {domain.EMAIL: "email", domain.SMS: "phone", domain.WHATSAPP: "whatsapp"}


class StaffAndPartnerDirectory:
    """Addresses at delivery time: a partner's contacts from mitra (over RPC, bounded by a
    timeout), BNNP staff from configuration (``OFFICER_EMAILS``, ``ADMIN_PHONES``, ...)."""

    def __init__(self, mitra, config: dict[str, Any], timeout: float = 5.0):
        self.mitra = mitra
        self.config = config
        self.timeout = timeout
        # one round of the delivery worker asks mitra once per partner
        self._partners: dict[str, dict[str, Any]] = {}

    def addresses(self, recipient: str, channel: str) -> list[str]:
        field = CONTACT_FIELDS.get(channel)
        if field is None:
            return []
        kind, _, ident = recipient.partition(":")
        if kind == "role":
            key = f"{ident.upper()}_{'EMAILS' if channel == domain.EMAIL else 'PHONES'}"
            return as_list(self.config.get(key))
        if kind == "partner":
            import eventlet

            from bersinar.entrypoints import RemoteDomainError

            try:
                if ident not in self._partners:
                    with eventlet.Timeout(self.timeout):
                        self._partners[ident] = self.mitra.get_partner(ident, {"role": "admin"})
                partner = self._partners[ident]
            except RemoteDomainError as exc:
                if exc.code == "NOT_FOUND":
                    raise PermanentDeliveryError(
                        "NO_ADDRESS", f"mitra {ident} tidak dikenal"
                    ) from exc
                raise
            except eventlet.Timeout:
                raise RuntimeError(f"mitra tidak menjawab dalam {self.timeout:g} detik") from None
            contacts = partner.get("contacts") or []
            return list(dict.fromkeys(c[field] for c in contacts if c.get(field)))
        return []

    def name(self, recipient: str) -> str | None:
        kind, _, ident = recipient.partition(":")
        partner = self._partners.get(ident) if kind == "partner" else None
        return partner.get("name") if partner else None
