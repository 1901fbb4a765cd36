"""The console's HTTP edge: one decorator gives every page its signed-in person (a session
cookie), the same role check as the API route it stands for, CSRF protection on every
form, a size limit, and an HTML error page in place of any error (never a bare 500)."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import eventlet
from jinja2 import Environment, FileSystemLoader, select_autoescape
from nameko.exceptions import UnknownService
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bersinar import codes
from bersinar.context import current_correlation_id
from bersinar.entrypoints import RemoteDomainError
from bersinar.errors import DomainError, NotFound
from bersinar.metrics import HTTP_DURATION, HTTP_REQUESTS
from gateway.console import labels
from gateway.console.accounts import SignedIn
from gateway.exceptions import RoleForbidden
from gateway.http import ROUTES, http, refuse_unstorable

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "bersinar_sesi"
LOGIN_CSRF_COOKIE = "bersinar_masuk"
BASE = "/console"

templates = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(labels=labels, role_labels=codes.ROLES, base=BASE)
templates.filters.update(labels.FILTERS)

ERROR_TITLES = {
    400: "Permintaan tidak valid",
    403: "Tidak diizinkan",
    404: "Halaman tidak ditemukan",
    405: "Cara permintaan tidak didukung",
    409: "Tidak dapat dilakukan sekarang",
    413: "Isian terlalu besar",
    422: "Isian tidak valid",
    429: "Terlalu banyak permintaan",
    503: "Layanan sedang tidak tersedia",
}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # no script runs on any page; the charts are SVG drawn on the server
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class CsrfRefused(DomainError):
    code = "CSRF_REFUSED"
    status = 403
    title = "Formulir kedaluwarsa"


def api_roles(route: str) -> tuple[str, ...]:
    """The roles of the API route a page stands for (``"POST /api/v1/referrals"``), so a
    page and its endpoint can never disagree on who may use them."""
    import gateway.routes  # noqa: F401 - registers every API route

    method, path = route.split(" ", 1)
    for known in ROUTES:
        if known.method == method and known.path == path:
            return known.roles or ()
    raise LookupError(f"no API route {route}")


def may(user: SignedIn | None, route: str) -> bool:
    return user is not None and user.role in api_roles(route)


def require_route(user: SignedIn, route: str) -> None:
    if not may(user, route):
        raise RoleForbidden("Peran Anda tidak boleh memakai halaman ini.")


templates.globals["may"] = may


# the address of the page being served (greenthread-local once eventlet patches
# threading): the menu marks where the person is
_serving = threading.local()


def render(template: str, http_status: int = 200, **context: Any) -> Response:
    """The page, answered with ``http_status``; every other keyword is the template's
    (a page's own ``status``, a referral status filter, never reaches the status line)."""
    context.setdefault("here", getattr(_serving, "path", ""))
    html = templates.get_template(template).render(**context)
    return Response(html, status=http_status, mimetype="text/html")


def redirect(location: str, status: int = 303) -> Response:
    return Response("", status=status, headers={"Location": location})


def secure_cookies(request, setting: str) -> bool:
    """``auto``: Secure when the page was served over TLS (directly or, behind a proxy
    that says so, ``X-Forwarded-Proto: https``)."""
    if setting in ("true", "1", "yes"):
        return True
    if setting in ("false", "0", "no"):
        return False
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"


def set_cookie(reply: Response, request, setting: str, name: str, value: str, **kw) -> None:
    reply.set_cookie(
        name,
        value,
        path=BASE,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request, setting),
        **kw,
    )


def login_csrf_token(request) -> str:
    """Before there is a session, the sign-in form is guarded by a double-submit token:
    a cookie and the same value in the form."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 64 else secrets.token_urlsafe(24)


def tokens_match(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


def error_page(exc: BaseException, user: SignedIn | None) -> Response:
    if isinstance(exc, HTTPException):
        status = exc.code or 400
        detail = ERROR_TITLES.get(status, "Permintaan tidak dapat dilayani.")
    elif isinstance(exc, DomainError | RemoteDomainError):
        status, detail = exc.status, exc.detail
    elif isinstance(exc, UnknownService | eventlet.Timeout):
        status, detail = 503, "Salah satu layanan tidak menjawab. Coba lagi sebentar lagi."
    else:
        log.error("unexpected error serving a console page: %s", type(exc).__name__, exc_info=exc)
        status, detail = 500, "Terjadi kesalahan pada server; sudah dicatat."
    if status == 404:
        detail = "Halaman atau data yang Anda cari tidak ada, atau bukan untuk akun Anda."
    title = ERROR_TITLES.get(status, "Kesalahan" if status >= 500 else "Permintaan ditolak")
    return render(
        "error.html",
        http_status=status,
        user=user,
        title=title,
        detail=detail,
        status_code=status,
        correlation_id=current_correlation_id(),
    )


def page(method: str, path: str, roles: tuple[str, ...] | None = codes.PEOPLE):
    """``roles=None``: open (sign-in, static files). Otherwise the person must be signed in
    with one of ``roles``; a POST must carry the session's CSRF token. The method gets
    ``(request, user, **url_args)`` and returns a Response."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, request, **url_args):
            started = time.perf_counter()
            user = None
            _serving.path = request.path
            try:
                request.max_content_length = self.max_body_bytes
                refuse_unstorable(url_args, "path")
                refuse_unstorable(request.args.to_dict(flat=False), "query")
                user = self.console_session(request)
                if roles is not None:
                    if user is None:
                        reply = self.session_ended(request, method)
                        return finish(reply, method, path, started)
                    self.rate_limiter.check(user.caller.key_id)
                    if user.role not in roles:
                        raise RoleForbidden("Peran Anda tidak boleh memakai halaman ini.")
                    if method == "POST":
                        refuse_unstorable(request.form.to_dict(flat=False), "form")
                        if not tokens_match(user.csrf_token, request.form.get("csrf", "")):
                            raise CsrfRefused(
                                "Formulir ini kedaluwarsa atau tidak berasal dari konsol. "
                                "Muat ulang halaman lalu coba lagi."
                            )
                reply = fn(self, request, user, **url_args)
            except Exception as exc:  # every error becomes a page in Bahasa Indonesia
                reply = error_page(exc, user)
            return finish(reply, method, path, started)

        return http(method, path)(wrapper)

    return decorate


def finish(reply: Response, method: str, path: str, started: float) -> Response:
    for name, value in SECURITY_HEADERS.items():
        reply.headers.setdefault(name, value)
    reply.headers["X-Correlation-ID"] = current_correlation_id() or ""
    elapsed = time.perf_counter() - started
    # the route's pattern, never the path itself: a log line names no object or person
    log.info("%s %s %s %.1fms", method, path, reply.status_code, elapsed * 1000)
    HTTP_REQUESTS.labels("gateway", path, method, str(reply.status_code)).inc()
    HTTP_DURATION.labels("gateway", path, method).observe(elapsed)
    return reply


def not_found() -> NotFound:
    return NotFound("Halaman tidak ditemukan.")


def field_errors(exc: DomainError | RemoteDomainError) -> dict[str, Any]:
    """A service's errors by field, flattened one level for the form (``client.nik`` →
    ``nik``)."""
    flat: dict[str, Any] = {}
    for key, value in (exc.errors or {}).items():
        if isinstance(value, dict):
            for inner, messages in value.items():
                flat[inner] = messages
        else:
            flat[key] = value
    return flat
