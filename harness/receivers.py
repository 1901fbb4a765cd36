"""The outside world of notifikasi, real and local: an SMTP server (aiosmtpd, in a
process of its own, writing a Maildir), an HTTP(S) receiver (webhooks, or a stand-in of
an SMS/WhatsApp provider) that can fail the first attempts of each delivery, and a stub
of the name resolver (the name -> address step only)."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import eventlet
import eventlet.wsgi
from aiosmtpd.handlers import Mailbox

from harness.infra import free_port


class CountingMailbox(Mailbox):
    """aiosmtpd's Maildir handler that also writes a line to ``sessions_file`` for every
    connection's greeting (EHLO), so a test can count SMTP connections."""

    def __init__(self, mail_dir: str, sessions_file: str):
        super().__init__(mail_dir)
        self.sessions_file = sessions_file

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("CountingMailbox takes a Maildir and a sessions file")
        return cls(*args)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with open(self.sessions_file, "a") as sessions:
            sessions.write(f"{hostname}\n")
        session.host_name = hostname
        return responses


class SmtpServer:
    def __init__(self, maildir: Path, port: int | None = None):
        self.port = port or free_port()
        self.maildir = maildir
        self.sessions_file = maildir.parent / f"{maildir.name}.sessions"
        self.process: subprocess.Popen | None = None

    def start(self) -> SmtpServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "harness.receivers.CountingMailbox", str(self.maildir),
             str(self.sessions_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the SMTP server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def sessions(self) -> int:
        """SMTP connections that greeted the server so far."""
        if not self.sessions_file.exists():
            return 0
        return len(self.sessions_file.read_text().splitlines())

    def accepted(self) -> int:
        """Messages the server took so far (without reading them)."""
        box = self.maildir / "new"
        return sum(1 for _ in box.iterdir()) if box.exists() else 0

    def messages(self) -> list[email.message.EmailMessage]:
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(str(self.maildir), create=False)
        return [
            email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            for key in box.keys()
        ]


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers 503 to the first ``fail_first`` requests of each delivery (by the
    ``X-Bersinar-Delivery`` header, or overall without one), then 200; ``always_fail``
    answers 500 to everything; ``delay`` seconds before each answer. ``tls``: a server
    SSL context, to answer https instead."""

    fail_first: int = 0
    always_fail: bool = False
    delay: float = 0.0
    tls: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)

    def start(self) -> HttpReceiver:
        self.seen: Counter[str] = Counter()
        listener = eventlet.listen(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.socket = self.tls.wrap_socket(listener, server_side=True) if self.tls else listener
        self.thread = eventlet.spawn(eventlet.wsgi.server, self.socket, self.app, log_output=False)
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.thread.kill()
        self.socket.close()

    def app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        key = headers.get("X-Bersinar-Delivery", "*")
        self.seen[key] += 1
        if self.delay:
            eventlet.sleep(self.delay)
        if self.always_fail:
            status = 500
        else:
            status = 503 if self.seen[key] <= self.fail_first else 200
        self.received.append(
            Received(environ["PATH_INFO"], environ.get("QUERY_STRING", ""), headers, body, status)
        )
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "text/plain")])  # fmt: skip
        return [b"ok" if status == 200 else b"gagal"]

    def succeeded(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]


class StubResolver:
    """What the system's resolver would answer (``services.notifikasi.channels.resolve``'s
    signature): ``names`` maps a name to its addresses, an address is its own, any other
    name does not exist. ``asked`` lists the names asked for, in order. Change ``names``
    between calls to play a name that moves (DNS rebinding)."""

    def __init__(self, names: dict[str, list[str]] | None = None):
        self.names = dict(names or {})
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.names:
            return list(self.names[host])
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [host]
