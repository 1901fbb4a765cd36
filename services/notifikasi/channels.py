"""The ways out of notifikasi: SMTP, signed webhook POSTs to checked addresses, and SMS /
WhatsApp through a provider adapter (apprise) configured by URL. Each call is bounded by
a timeout; blocking libraries are fine because the process is monkey-patched by eventlet.

A sender raises on failure (the worker records and retries); ``PermanentDeliveryError``
means no retry can help."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

with warnings.catch_warnings():  # apprise's plugins import imghdr (deprecated) lazily:
    warnings.simplefilter("ignore", DeprecationWarning)  # import it once here, quietly
    import imghdr  # noqa: F401

    import apprise

from bersinar.errors import WebhookTargetRefused
from services.notifikasi import domain
from services.notifikasi.domain import PermanentDeliveryError


def as_list(value: Any) -> list[str]:
    """A list from config: a YAML list, or a comma-separated string."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def as_flag(value: Any) -> bool:
    """A yes/no from config: YAML's booleans, or true/yes/1 as text."""
    return str(value).strip().lower() in ("true", "yes", "1")


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


def resolve(host: str, port: int) -> list[str]:
    """Every address of a name (an address is its own), as the system's resolver gives
    them, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UnresolvedTarget(WebhookTargetRefused):
    """The name has no address now: refused at subscription; at delivery, a failure
    that a later attempt may not meet (DNS down)."""


@dataclass(frozen=True)
class Target:
    """A webhook address checked against the policy, with the addresses it was checked
    at: the request goes to one of these, not to what the name resolves to later."""

    scheme: str
    host: str
    port: int
    netloc: str  # host[:port] as written: the Host header
    path: str  # path and query
    addresses: tuple[str, ...]

    def url_at(self, address: str) -> str:
        at = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{at}:{self.port}{self.path}"


class WebhookTargets:
    """Checks a webhook address when it is subscribed and again before every delivery:
    ``domain.TargetPolicy`` on the scheme and on every address the name resolves to."""

    def __init__(self, policy: domain.TargetPolicy, resolver: Callable | None = None):
        self.policy = policy
        self.resolver = resolver

    def check(self, url: str) -> Target:
        """The target, or ``WebhookTargetRefused`` with the reason in Indonesian."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            port = 0
        if not host or not 0 < port < 65536 or scheme not in ("http", "https"):
            raise _refused("Alamat http(s) tidak sah.")
        reason = self.policy.refusal_before_resolving(scheme, host, port)
        if reason is not None:
            raise _refused(reason)
        try:
            addresses = (self.resolver or resolve)(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise _refused(f"Nama host {host} tidak ditemukan di DNS.", UnresolvedTarget)
        reason = self.policy.refusal(host, port, addresses)
        if reason is not None:
            raise _refused(reason)
        path = parts.path or "/"
        path += f"?{parts.query}" if parts.query else ""
        return Target(scheme, host, port, parts.netloc, path, tuple(addresses))


def _refused(reason: str, kind: type[WebhookTargetRefused] = WebhookTargetRefused):
    return kind(reason, errors={"url": [reason]})


class _PinnedHost(HTTPAdapter):
    """An adapter for a URL written with the checked address: the connection goes to
    that address, while TLS speaks to the name (SNI) and checks the certificate against
    it, as if the name had been resolved by urllib3 (which would resolve it again)."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__()

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            pool_kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        return host_params, pool_kwargs


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Refused or timed out while connecting: nothing was sent, another address may
    be tried."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


class WebhookChannel:
    """Standard Webhooks POSTs (docs/webhooks.md), each to an address checked just
    before it is sent (a name that now resolves to a private address is refused: DNS
    rebinding), never through a proxy of the environment, never following a redirect.
    ``verify``: True (the system's CAs) or a CA bundle's path."""

    def __init__(
        self,
        targets: WebhookTargets | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        verify: bool | str = True,
    ):
        self.targets = targets or WebhookTargets(domain.TargetPolicy())
        self.timeout = (connect_timeout, read_timeout)
        self.verify = verify

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
        try:
            target = self.targets.check(url)
        except UnresolvedTarget as exc:
            raise RuntimeError(exc.detail) from None
        except WebhookTargetRefused as exc:
            raise PermanentDeliveryError("TARGET_REFUSED", exc.detail) from None
        body = self.body(envelope)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Bersinar-Webhook/1",
            "Host": target.netloc,
            **domain.signed_headers(
                secret, delivery_id, int(now if now is not None else time.time()), body
            ),
            domain.DELIVERY_HEADER: delivery_id,
            domain.EVENT_HEADER: envelope["event_type"],
        }
        for number, address in enumerate(target.addresses, start=1):
            try:
                response = self._post(target, address, body, headers)
                break
            except requests.ConnectionError as exc:
                if number == len(target.addresses) or not _never_connected(exc):
                    raise
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code} dari penerima webhook")

    def _post(self, target: Target, address: str, body: bytes, headers: dict[str, str]):
        with requests.Session() as session:
            session.trust_env = False  # a proxy would resolve the name again
            session.mount(f"{target.scheme}://", _PinnedHost(target.host))
            return session.post(
                target.url_at(address),
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self.verify,
            )


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
            webhook=WebhookChannel(
                WebhookTargets(
                    domain.TargetPolicy(
                        domain.parse_allowed_hosts(config.get("WEBHOOK_ALLOW_HOSTS")),
                        as_flag(config.get("WEBHOOK_ALLOWED_ONLY")),
                    )
                ),
                read_timeout=float(config.get("WEBHOOK_TIMEOUT") or 10),
            ),
            sms=PhoneChannel("SMS", str(config.get("SMS_URL") or "")),
            whatsapp=PhoneChannel("WhatsApp", str(config.get("WHATSAPP_URL") or "")),
        )


CONTACT_FIELDS = {domain.EMAIL: "email", domain.SMS: "phone", domain.WHATSAPP: "whatsapp"}


class PartnerCache:
    """mitra's answers about partners (their name and contacts), kept ``seconds`` per
    partner in one process: a burst of events for a partner asks mitra once, not once per
    batch. A change of contacts is seen when the entry expires (contacts are not in
    mitra's events); 0 keeps nothing."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = max(0.0, float(seconds))
        self.clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, ident: str) -> dict[str, Any] | None:
        entry = self._entries.get(ident)
        if entry is None:
            return None
        if self.clock() - entry[0] >= self.seconds:
            del self._entries[ident]
            return None
        return entry[1]

    def put(self, ident: str, partner: dict[str, Any]) -> None:
        if self.seconds > 0:
            self._entries[ident] = (self.clock(), partner)


class StaffAndPartnerDirectory:
    """Addresses at delivery time: a partner's contacts from mitra (over RPC, bounded by a
    timeout), BNNP staff from configuration (``OFFICER_EMAILS``, ``ADMIN_PHONES``, ...)."""

    def __init__(
        self,
        mitra,
        config: dict[str, Any],
        timeout: float = 5.0,
        shared: PartnerCache | None = None,
    ):
        self.mitra = mitra
        self.config = config
        self.timeout = timeout
        # one round of the delivery worker (or one batch of events) asks mitra once per
        # partner; ``shared`` keeps mitra's answer for the next rounds and batches too
        self._partners: dict[str, dict[str, Any]] = {}
        self.shared = shared

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
                    known = self.shared.get(ident) if self.shared is not None else None
                    if known is None:
                        with eventlet.Timeout(self.timeout):
                            known = self.mitra.get_partner(ident, {"role": "admin"})
                        if self.shared is not None:
                            self.shared.put(ident, known)
                    self._partners[ident] = known
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
