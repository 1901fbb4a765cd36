"""FHIR search parameters read into filters, searchset and history Bundles with their
paging links, and OperationOutcomes: plain functions, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bersinar.codes import LOCAL_TZ
from bersinar.errors import ValidationFailed
from gateway.fhir.terms import ERROR_SYSTEM

DEFAULT_COUNT, MAX_COUNT = 50, 200
# parameters every search takes besides its own: page size and place, and the answer's
# format (JSON is all there is)
RESULT_PARAMETERS = ("_count", "_cursor", "_format")
FORMATS = ("json", "application/json", "application/fhir+json")
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE = re.compile(
    r"(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)
# HTTP status -> OperationOutcome.issue.code
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


class SearchRefused(ValidationFailed):
    """A search parameter the server does not know or cannot read: FHIR answers 400."""

    status = 400


def refuse(name: str, message: str) -> SearchRefused:
    return SearchRefused(f"Parameter pencarian {name}: {message}", errors={name: [message]})


@dataclass
class Search:
    """The parameters of one search: each known one's values (a repeated parameter is
    ANDed, a comma within one value ORs), the page size and the cursor."""

    values: dict[str, list[str]] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    cursor: str | None = None

    def one(self, name: str) -> str | None:
        values = self.values.get(name) or []
        if len(values) > 1:
            raise refuse(name, "hanya boleh sekali.")
        return values[0] if values else None

    def any_of(self, name: str) -> list[str] | None:
        """The values ORed of a parameter given once (``status=a,b``); None if absent."""
        value = self.one(name)
        if value is None:
            return None
        options = [v for v in value.split(",") if v]
        if not options:
            raise refuse(name, "kosong.")
        return options


def read_search(args: Mapping[str, list[str]], known: Iterable[str]) -> Search:
    """The query of a search (``args``: each name with its values). A parameter the
    resource does not support is refused, not silently ignored, as the rest of the API
    refuses unknown fields."""
    known = set(known)
    search = Search()
    for name, values in args.items():
        if name in RESULT_PARAMETERS:
            if len(values) > 1:
                raise refuse(name, "hanya boleh sekali.")
            value = values[0]
            if name == "_count":
                if not value.isdigit() or not 1 <= int(value) <= MAX_COUNT:
                    raise refuse(name, f"bilangan 1 sampai {MAX_COUNT}.")
                search.count = int(value)
            elif name == "_cursor":
                if not ID_PATTERN.fullmatch(value):
                    raise refuse(name, "tidak dikenal.")
                search.cursor = value
            elif value not in FORMATS:
                raise refuse(name, "hanya JSON (application/fhir+json).")
            continue
        if name not in known:
            raise refuse(name, "tidak didukung untuk sumber daya ini.")
        if any(not value for value in values):
            raise refuse(name, "kosong.")
        search.values[name] = list(values)
    return search


# --- values ----------------------------------------------------------------------------


def date_window(values: list[str] | None, name: str = "_lastUpdated"):
    """The instants a date parameter admits: ``(from, before)``, each None if open. A
    value's precision makes a range (a day, a month); without a zone it is Bengkulu's
    time. Prefixes eq, ge, gt, le, lt; the others are refused."""
    lower: datetime | None = None
    upper: datetime | None = None
    for value in values or []:
        match = _DATE.fullmatch(value)
        if not match:
            raise refuse(name, "tanggal tidak sah (YYYY, YYYY-MM, YYYY-MM-DD, atau waktu).")
        if not 1900 <= int(match["year"]) <= 2098:
            raise refuse(name, "tahun 1900 sampai 2098.")
        prefix = match["prefix"] or "eq"
        if prefix not in ("eq", "ge", "gt", "le", "lt"):
            raise refuse(name, f"awalan {prefix} tidak didukung.")
        try:
            start, end = _range(match)
        except ValueError:
            raise refuse(name, "tanggal tidak ada.") from None
        if prefix in ("eq", "ge"):
            lower = start if lower is None else max(lower, start)
        if prefix == "gt":
            lower = end if lower is None else max(lower, end)
        if prefix in ("eq", "le"):
            upper = end if upper is None else min(upper, end)
        if prefix == "lt":
            upper = start if upper is None else min(upper, start)
    return lower, upper


def _range(match: re.Match) -> tuple[datetime, datetime]:
    year = int(match["year"])
    if match["month"] is None:
        start = datetime(year, 1, 1, tzinfo=LOCAL_TZ)
        return start, start.replace(year=year + 1)
    month = int(match["month"])
    if match["day"] is None:
        start = datetime(year, month, 1, tzinfo=LOCAL_TZ)
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        return start, start.replace(year=following[0], month=following[1])
    day = datetime(year, month, int(match["day"]), tzinfo=LOCAL_TZ)
    if match["time"] is None:
        return day, day + timedelta(days=1)
    zone = match["zone"] or ""
    moment = datetime.fromisoformat(
        f"{match['year']}-{match['month']}-{match['day']}T{match['time']}"
    )
    if zone:
        moment = datetime.fromisoformat(moment.isoformat() + zone.replace("Z", "+00:00"))
    else:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    precision = timedelta(seconds=1) if match["time"].count(":") == 2 else timedelta(minutes=1)
    if "." in match["time"]:
        precision = timedelta(microseconds=1)
    return moment, moment + precision


def within(stamp: str, window: tuple[datetime | None, datetime | None]) -> bool:
    lower, upper = window
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (lower is None or moment >= lower) and (upper is None or moment < upper)


def token_codes(values: list[str] | None, system: str | None, name: str) -> set[str] | None:
    """The codes a token parameter admits (``code``, ``system|code`` or ``|code``),
    ORed; None if absent. A system other than ``system`` matches nothing."""
    if values is None:
        return None
    admitted = set()
    for value in values:
        given, bar, code = value.rpartition("|")
        if not bar:
            admitted.add(value)
        elif given in ("", system):
            admitted.add(code)
        if not code:
            raise refuse(name, "kode kosong.")
    return admitted


def boolean(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value not in ("true", "false"):
        raise refuse(name, "true atau false.")
    return value == "true"


def reference_id(value: str | None, resource_type: str, name: str) -> str | None:
    """``Organization/x``, or ``x``: the id ``x``."""
    if value is None:
        return None
    kind, slash, ident = value.rpartition("/")
    if slash and kind.rsplit("/", 1)[-1] != resource_type:
        raise refuse(name, f"rujukan ke {resource_type}.")
    if not ID_PATTERN.fullmatch(ident):
        raise refuse(name, "id tidak sah.")
    return ident


def matches_text(value: str, texts: Iterable[str | None], modifier: str = "") -> bool:
    """FHIR string search: case-insensitive; by default a text or one of its words starts
    with the value, ``:contains`` anywhere in it, ``:exact`` the whole text as it is."""
    for text in texts:
        if not text:
            continue
        if modifier == "exact":
            if text == value:
                return True
            continue
        lowered, wanted = text.casefold(), value.casefold()
        if modifier == "contains":
            if wanted in lowered:
                return True
        elif lowered.startswith(wanted) or any(
            word.startswith(wanted) for word in re.split(r"[\s,/().-]+", lowered)
        ):
            return True
    return False


def string_parameter(search: Search, name: str) -> tuple[str, str] | None:
    """A string parameter given with or without its modifier: (value, modifier)."""
    found = [key for key in search.values if key.split(":")[0] == name]
    if not found:
        return None
    if len(found) > 1:
        raise refuse(name, "hanya boleh sekali.")
    key = found[0]
    value = search.one(key)
    assert value is not None
    return value, key.partition(":")[2]


# --- Bundles and OperationOutcome --------------------------------------------------------


def page_link(url: str, params: Mapping[str, list[str]], cursor: str) -> str:
    pairs = [(k, v) for k, values in params.items() if k != "_cursor" for v in values]
    return f"{url}?{urlencode([*pairs, ('_cursor', cursor)])}"


def searchset(
    base: str,
    self_url: str,
    resources: list[dict[str, Any]],
    next_url: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = [{"relation": "self", "url": self_url}]
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    bundle["entry"] = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    return bundle


def history(base: str, self_url: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """An instance's history: newest version first, each with how it came to be."""
    entries = []
    for resource in reversed(versions):
        kind, ident = resource["resourceType"], resource["id"]
        first = resource["meta"]["versionId"] == "1"
        entries.append(
            {
                "fullUrl": f"{base}/{kind}/{ident}",
                "resource": resource,
                "request": {
                    "method": "POST" if first else "PUT",
                    "url": kind if first else f"{kind}/{ident}",
                },
                "response": {
                    "status": "201 Created" if first else "200 OK",
                    "etag": f'W/"{resource["meta"]["versionId"]}"',
                    "lastModified": resource["meta"]["lastUpdated"],
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }


def operation_outcome(
    status: int, code: str, title: str, detail: str, errors: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An error as FHIR states it, carrying the API's stable code (docs/fhir.md#errors)."""
    details = {"coding": [{"system": ERROR_SYSTEM, "code": code, "display": title}]}
    issue_type = ISSUE_TYPES.get(status, "exception")
    issues = [{"severity": "error", "code": issue_type, "details": details, "diagnostics": detail}]
    for where, messages in (errors or {}).items():
        text = messages if isinstance(messages, str) else _flatten(messages)
        issues.append(
            {
                "severity": "error",
                "code": issue_type,
                "details": details,
                "diagnostics": f"{where}: {text}",
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def _flatten(messages: Any) -> str:
    if isinstance(messages, Mapping):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in messages.items())
    if isinstance(messages, list | tuple):
        return " ".join(_flatten(m) for m in messages)
    return str(messages)
