"""One refusal rule over every endpoint of the API (docs/architecture.md, "Refusals"),
against the processes of `make run` on a vhost and databases of their own:

- no key, or one that is not valid: 401 ``UNAUTHORIZED``;
- a role that may never do this: 403 ``FORBIDDEN``, whatever the object's state;
- an object of another partner, read, acted on or named in a list's filter: 404
  ``NOT_FOUND``, as if absent;
- everyone else, with an object in a state that allows the action: 2xx.

Each cell of the matrix is a real request on an object made for it, so an allowed role
is shown to succeed, not merely not to be refused. A route without a row here fails the
test: a new endpoint comes with its row."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

import gateway.service  # noqa: F401  (declaring the routes fills ROUTES)
from gateway.http import ROUTES
from harness.data import referral_body, transfer_body
from harness.system import System
from tests.e2e.edge import ATTACHMENT_KINDS, EMPTY_MONTH, PDF, REPORT, World, serial

CALLERS = ("none", "admin", "officer", "partner", "other_partner", "national", "ops")
_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@dataclass
class Call:
    """One request of a cell: path arguments, body, query."""

    values: dict[str, str] = field(default_factory=dict)
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    # a file sent as the body (an attachment), instead of JSON
    upload: bytes | None = None


def _reader(caller: str) -> str:
    """The caller whose own object a cell uses: the other partner is handed the own
    partner's (that is the point of its column)."""
    return "partner" if caller == "other_partner" else caller


def _inbox_of(caller: str) -> str:
    return "officer" if caller == "officer" else "partner"


# Each row: (method, path) -> how a caller's request is made, from the caller whose
# object it uses and whether the cell gets past the role check (``real``).
def _cells(world: World) -> dict[tuple[str, str], Any]:
    own, other = world.own, world.other
    referral = world.referral

    def transition(status, body=None):
        return lambda caller, real: Call({"referral_id": referral(status)}, body)

    def inbox_query(caller):
        return {} if caller == "officer" else {"partner_id": own}

    def report_cell(state, body):
        return lambda caller, real: Call(
            {"partner_id": own, "period": world.report(state, real)}, body
        )

    def preference_recipient(caller):
        return None if caller == "officer" else f"partner:{own}"

    return {
        ("POST", "/api/v1/referrals"): lambda c, real: Call(
            body=referral_body(partner_id=own, service_type="outpatient")
        ),
        ("GET", "/api/v1/referrals"): lambda c, real: Call(query={"partner_id": own}),
        ("POST", "/api/v1/clients/search"): lambda c, real: Call(
            body={"name": "Budi Santoso", "partner_id": own}
        ),
        ("GET", "/api/v1/referrals/<string:referral_id>"): transition("requested"),
        ("GET", "/api/v1/referrals/<string:referral_id>/history"): transition("requested"),
        ("GET", "/api/v1/referrals/<string:referral_id>/letter.pdf"): transition("requested"),
        ("POST", "/api/v1/referrals/<string:referral_id>/accept"): transition("requested"),
        ("POST", "/api/v1/referrals/<string:referral_id>/reject"): transition(
            "requested", {"reason": "client_unreachable"}
        ),
        ("POST", "/api/v1/referrals/<string:referral_id>/admit"): transition("accepted"),
        ("POST", "/api/v1/referrals/<string:referral_id>/complete"): transition(
            "admitted", {"discharge": {"outcome": "improved", "reasons": ["program_completed"]}}
        ),
        ("POST", "/api/v1/referrals/<string:referral_id>/drop-out"): transition(
            "admitted", {"discharge": {"outcome": "unchanged", "reasons": ["lost_contact"]}}
        ),
        ("POST", "/api/v1/referrals/<string:referral_id>/cancel"): transition("requested"),
        ("POST", "/api/v1/referrals/<string:referral_id>/consent/withdraw"): transition(
            "accepted", {"note": "Klien mencabut persetujuan."}
        ),
        ("POST", "/api/v1/referrals/<string:referral_id>/transfer"): transition(
            "admitted", transfer_body(other, "Klien pindah domisili.")
        ),
        ("POST", "/api/v1/referrals/<string:referral_id>/undo"): transition(
            "accepted", {"expected_status": "accepted", "reason": "Diterima karena salah pilih."}
        ),
        ("POST", "/api/v1/clients/<string:client_id>/corrections"): lambda c, real: Call(
            {"client_id": world.client()},
            {"name": f"Budi Matriks {serial()}", "reason": "Nama salah ketik."},
        ),
        ("GET", "/api/v1/partners/match"): lambda c, real: Call(
            query={"sex": "F", "service_type": "outpatient"}
        ),
        ("GET", "/api/v1/audit"): lambda c, real: Call(),
        ("POST", "/api/v1/api-keys"): lambda c, real: Call(
            body={"role": "ops", "label": "matriks"}
        ),
        ("GET", "/api/v1/api-keys"): lambda c, real: Call(),
        ("DELETE", "/api/v1/api-keys/<string:key_id>"): lambda c, real: Call(
            {"key_id": world.api_key()}
        ),
        ("GET", "/api/v1/notifications"): lambda c, real: Call(query=inbox_query(c)),
        ("POST", "/api/v1/notifications/<string:notification_id>/read"): lambda c, real: Call(
            {"notification_id": world.notification(_inbox_of(c))}
        ),
        ("POST", "/api/v1/notifications/<string:notification_id>/unread"): lambda c, real: Call(
            {"notification_id": world.notification(_inbox_of(c))}
        ),
        ("GET", "/api/v1/notifications/deliveries"): lambda c, real: Call(),
        ("GET", "/api/v1/notifications/deliveries/<string:delivery_id>"): lambda c, real: Call(
            {"delivery_id": world.delivery()}
        ),
        ("GET", "/api/v1/notifications/preferences"): lambda c, real: Call(
            query={"recipient": r} if (r := preference_recipient(c)) else {}
        ),
        ("PUT", "/api/v1/notifications/preferences"): lambda c, real: Call(
            body={
                **({"recipient": r} if (r := preference_recipient(c)) else {}),
                "items": [{"event_type": "*", "channels": ["inbox"]}],
            }
        ),
        ("GET", "/api/v1/partners"): lambda c, real: Call(),
        ("POST", "/api/v1/partners"): lambda c, real: Call(
            body={
                "name": f"Yayasan Matriks {serial()}",
                "kind": "community",
                "kabupaten_kota": "Kota Bengkulu",
                "sex_served": "all",
            }
        ),
        ("GET", "/api/v1/occupancy"): lambda c, real: Call(),
        ("GET", "/api/v1/partners/<string:partner_id>"): lambda c, real: Call({"partner_id": own}),
        ("PATCH", "/api/v1/partners/<string:partner_id>"): lambda c, real: Call(
            {"partner_id": own},
            {"services": [{"service_type": "outpatient", "capacity": 500 + serial()}]},
        ),
        ("GET", "/api/v1/partners/<string:partner_id>/agreements"): lambda c, real: Call(
            {"partner_id": own}
        ),
        ("POST", "/api/v1/partners/<string:partner_id>/agreements"): lambda c, real: Call(
            {"partner_id": own}, World.terms()
        ),
        (
            "POST",
            "/api/v1/partners/<string:partner_id>/agreements/<string:agreement_id>/terminate",
        ): lambda c, real: Call(
            {
                "partner_id": own,
                "agreement_id": world.ok(
                    world.system.post(f"/api/v1/partners/{own}/agreements", World.terms()), 201
                )["id"],
            },
            {"reason": "Uji matriks penolakan."},
        ),
        ("GET", "/api/v1/partners/<string:partner_id>/activities"): lambda c, real: Call(
            {"partner_id": own}
        ),
        ("POST", "/api/v1/partners/<string:partner_id>/activities"): lambda c, real: Call(
            {"partner_id": own},
            {"kind": "training", "held_on": "2026-11-20", "title": "Pelatihan matriks"},
        ),
        ("GET", "/api/v1/partners/<string:partner_id>/scores"): lambda c, real: Call(
            {"partner_id": own}
        ),
        ("GET", "/api/v1/reports"): lambda c, real: Call(
            query={"period": "2026-11", "partner_id": own}
        ),
        ("GET", "/api/v1/reports/<string:partner_id>/<string:period>"): lambda c, real: Call(
            {"partner_id": own, "period": "2026-11"}
        ),
        (
            "GET",
            REPORT + ".pdf",
        ): lambda c, real: Call({"partner_id": own, "period": "2026-11"}),
        ("PUT", REPORT): report_cell("due", EMPTY_MONTH),
        ("POST", REPORT + "/approve"): report_cell("submitted", {}),
        ("POST", REPORT + "/return"): report_cell(
            "submitted", {"comment": "Mohon lengkapi narasi."}
        ),
        ("POST", REPORT + "/reopen"): report_cell("locked", {"comment": "Terkendala listrik."}),
        **attachment_cells(world, "referral", lambda: {"referral_id": referral()}),
        **attachment_cells(
            world, "agreement", lambda: {"partner_id": own, "agreement_id": world.agreement()}
        ),
        **attachment_cells(world, "report", lambda: {"partner_id": own, "period": "2026-11"}),
        ("GET", "/api/v1/indicators"): lambda c, real: Call(query={"period": "2026-11"}),
        ("GET", "/api/v1/exports/monthly"): lambda c, real: Call(query={"period": "2026-11"}),
        ("POST", "/api/v1/webhooks"): lambda c, real: Call(body=World.webhook()),
        ("GET", "/api/v1/webhooks"): lambda c, real: Call(),
        ("DELETE", "/api/v1/webhooks/<string:subscription_id>"): lambda c, real: Call(
            {"subscription_id": world.subscription(c)}
        ),
    }


ATTACHMENT_PATHS = {
    "referral": "/api/v1/referrals/<string:referral_id>/attachments",
    "agreement": "/api/v1/partners/<string:partner_id>/agreements/<string:agreement_id>"
    "/attachments",
    "report": REPORT + "/attachments",
}


def attachment_cells(world: World, owner: str, place) -> dict[tuple[str, str], Any]:
    """The four operations on one kind of object's attachments: each cell that gets
    past the role check on an object (and a file) of its own."""
    path, kind = ATTACHMENT_PATHS[owner], ATTACHMENT_KINDS[owner]
    one = path + "/<string:attachment_id>"

    def attached(real):
        values = place()
        found = fill(path, values)
        attachment = world.attachment(found, kind) if real else str(uuid.uuid4())
        return {**values, "attachment_id": attachment}

    return {
        ("POST", path): lambda c, real: Call(place(), query={"kind": kind}, upload=PDF),
        ("GET", path): lambda c, real: Call(place()),
        ("GET", one): lambda c, real: Call(attached(real)),
        ("DELETE", one): lambda c, real: Call(attached(real), {"reason": "Uji matriks."}),
    }


# what the whole directory may read, whichever partner asks
DIRECTORY = {("GET", "/api/v1/partners"), ("GET", "/api/v1/partners/<string:partner_id>")}
# a partner's objects, by the path or by a filter; the other partner meets the own one's
PARTNERS_OWN = {
    ("GET", "/api/v1/referrals"),
    ("POST", "/api/v1/clients/search"),
    ("GET", "/api/v1/notifications"),
    ("GET", "/api/v1/notifications/preferences"),
    ("PUT", "/api/v1/notifications/preferences"),
    ("GET", "/api/v1/reports"),
}


def fill(path: str, values: dict[str, str]) -> str:
    return _ARG.sub(lambda m: values[m.group(1)], path)


def expected(route, caller: str) -> tuple[int | str, str | None]:
    if caller == "none":
        return 401, "UNAUTHORIZED"
    role = _reader(caller)
    if role not in route.roles:
        return 403, "FORBIDDEN"
    if caller == "other_partner" and (route.method, route.path) not in DIRECTORY:
        if route.path_arguments or (route.method, route.path) in PARTNERS_OWN:
            return 404, "NOT_FOUND"
    return "2xx", None


def test_every_endpoint_answers_every_caller_by_the_one_rule(edge, world):
    cells = _cells(world)
    protected = [route for route in ROUTES if route.roles is not None]
    assert {(r.method, r.path) for r in protected} == set(cells), "a route without its row"
    tried, wrong = 0, []
    for route in protected:
        for caller in CALLERS:
            status, code = expected(route, caller)
            real = status == "2xx" or code == "NOT_FOUND"
            call = cells[route.method, route.path](_reader(caller), real)
            headers = {} if caller == "none" else edge.headers(world.keys[caller])
            if call.upload is not None:
                headers = {**headers, "Content-Type": "application/pdf"}
            response = requests.request(
                route.method,
                edge.base_url + fill(route.path, call.values),
                params=call.query,
                json=call.body,
                data=call.upload,
                headers=headers,
                timeout=15,
            )
            tried += 1
            got = response.status_code
            fine = (
                200 <= got < 300
                if status == "2xx"
                else (got, response.json().get("code")) == (status, code)
            )
            if status != "2xx":
                fine = fine and response.headers["Content-Type"].startswith(
                    "application/problem+json"
                )
            if not fine:
                wrong.append((route.method, route.path, caller, got, response.text[:200]))
    for each in wrong:
        print("wrong:", each)
    print(f"\n[refusals] {len(protected)} endpoints x {len(CALLERS)} callers: {tried} cells")
    assert wrong == []


# --- garbage: every operation, generated input, a coded 4xx and nothing stored ----------

# the tables that hold what people and partners entered, by component (bookkeeping that
# background work moves on its own, such as the outbox or delivery attempts, is left out)
STORED = {
    "mitra": ("partners", "service_offers", "agreements", "contacts", "activities"),
    "rujukan": (
        "clients",
        "client_name_tokens",
        "referrals",
        "referral_history",
        "referral_discharges",
        "access_audit",
        "referral_letters",
        "letter_counters",
    ),
    "laporan": ("reports", "report_versions", "report_history"),
    "notifikasi": ("notifications", "webhook_subscriptions", "preferences"),
    "gateway": ("idempotency_records",),
}


def stored(system: System) -> dict[str, str]:
    digests = {}
    for component, tables in STORED.items():
        engine = create_engine(system.urls[component])
        try:
            with engine.connect() as connection:
                for table in tables:
                    digests[f"{component}.{table}"] = connection.scalar(
                        text(
                            "SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' "
                            f"ORDER BY t::text), '')) FROM {table} t"
                        )
                    )
                keys = "SELECT count(*) || ':' || count(revoked_at) FROM api_keys"
                if component == "gateway":
                    digests["gateway.api_keys"] = connection.scalar(text(keys))
        finally:
            engine.dispose()
    return digests


def settled(system: System, timeout: float = 90) -> dict[str, str]:
    """What is stored once the events of earlier work have all been consumed: two looks
    a second apart that agree."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = stored(system)
        if now == last:
            return now
        last = now
        time.sleep(1)
    raise TimeoutError("stored data kept changing")


# values no field of the API takes: text with NUL or half a surrogate pair, numbers past
# every range, nesting past the limit
NEVER_VALID = st.one_of(
    st.text(max_size=20).map(lambda t: t + "\x00"),
    st.sampled_from(["\ud800", "a\udfff", "\udbff\udc00x"]),
    st.integers(min_value=10**30, max_value=10**60),
    st.integers(min_value=-(10**60), max_value=-(10**30)),
    st.integers(min_value=33, max_value=200).map(lambda n: json.loads("[" * n + "]" * n)),
)
ODD_TEXT = st.text(
    alphabet=st.sampled_from("a٣３\u202e\u200b\ufeff\U0001f600 ,.%<>\"'\\/\x7f"), max_size=12
)
ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _fields(schema) -> list[str]:
    return list(schema().fields) if schema is not None else []


def garbage_body(route):
    """Bytes no operation accepts: not JSON, JSON nested too deep or holding a number
    past a double, a top level that is not an object, an object with a field the
    operation does not know, or the operation's own example with one never-valid value."""
    known = _fields(route.body) or ["x"]
    objects = st.fixed_dictionaries(
        {"☠ tidak dikenal": ANY_VALUE},
        optional={name: ANY_VALUE for name in known},
    )
    with_bad_value = st.tuples(st.sampled_from(known), NEVER_VALID).map(
        lambda pair: {**(route.example or {}), pair[0]: pair[1]}
    )
    as_json = st.one_of(
        objects,
        with_bad_value,
        st.lists(ANY_VALUE, max_size=3),
        ODD_TEXT,
        st.integers(),
    ).map(lambda value: json.dumps(value).encode())
    return st.one_of(
        as_json,
        st.integers(min_value=33, max_value=20_000).map(lambda n: b"[" * n + b"]" * n),
        st.sampled_from([b"1e999", b"-1e999", b"NaN", b"Infinity", b"9" * 5000]),
        st.binary(max_size=40).filter(lambda raw: not _an_object(raw)),
    )


def _an_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


def garbage_query(route):
    known = _fields(route.query) or ["x"]
    return st.fixed_dictionaries(
        {"☠tidak-dikenal": ODD_TEXT},
        optional={
            name: st.one_of(ODD_TEXT, st.sampled_from(["+5", "٥", "yes", "9999-12"]))
            for name in known
        },
    )


GARBAGE_SEGMENT = st.one_of(
    ODD_TEXT.filter(bool),
    st.sampled_from(["..", "%00", "٣٣", "ｍａｔｃｈ", "9999-99", "-1", "a" * 300]),
)


def send_garbage(system: System, route, wrong: list) -> int:
    """Generated garbage to one operation, where it reads input (path, body, query);
    what is not a coded 4xx problem goes to ``wrong``. Answers how many were sent."""
    sent = 0

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        body=garbage_body(route) if route.body is not None else st.none(),
        query=garbage_query(route) if route.query is not None else st.just({}),
        segments=st.fixed_dictionaries({name: GARBAGE_SEGMENT for name in route.path_arguments}),
    )
    def check(body, query, segments):
        nonlocal sent
        if not (body is not None or query or segments):
            return  # an operation that reads no input has nothing to be garbage
        url = system.base_url + _ARG.sub(
            lambda m: requests.utils.quote(segments[m.group(1)], safe=""), route.path
        )
        response = requests.request(
            route.method,
            url,
            params=query,
            data=body,
            headers={**system.headers(), "Content-Type": "application/json"},
            timeout=15,
        )
        sent += 1
        problem = response.headers.get("Content-Type", "").startswith("application/problem+json")
        code = response.json().get("code", "") if problem else ""
        if not (400 <= response.status_code < 500 and re.fullmatch("[A-Z_]+", code)):
            wrong.append((route.method, route.path, response.status_code, response.text[:160]))

    check()
    return sent


@pytest.mark.timeout(900)
def test_garbage_to_every_operation_gets_a_coded_4xx_and_stores_nothing(edge, world):
    protected = [route for route in ROUTES if route.roles is not None]
    before = settled(edge)
    wrong: list = []
    tried = sum(send_garbage(edge, route, wrong) for route in protected)
    for each in wrong[:20]:
        print("wrong:", each)
    print(f"\n[garbage] {len(protected)} operations, {tried} requests, {len(wrong)} wrong")
    assert wrong == []
    assert settled(edge) == before
