"""Monthly partner reports: periods and deadlines, the validation rules of a report, its
review, the counts laporan derives from referral events, the monitoring indicators and
the de-identified national recap. Plain Python: no nameko, no SQL."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bersinar import codes

# a month is a month in Bengkulu (WIB), not in UTC
from bersinar.codes import LOCAL_TZ, MEASURES, SERVICE_TYPES, SEXES, local_date  # noqa: F401
from bersinar.contracts.reports import PERIOD_PATTERN

# the measures that come straight from referral events (start and end follow from them)
OUTCOMES = {
    "completed": "completed",
    "dropped_out": "dropped_out",
    "transferred": "transferred_out",
}
SERVICES_DELIVERED = ("counselling_sessions", "group_sessions", "home_visits")
CAPACITY_BUILDING = ("activities", "staff_trained")

# Report statuses. `open`: expected, not yet due and not submitted; `missing`: the due
# date passed with nothing submitted.
OPEN, MISSING = "open", "missing"
SUBMITTED_ON_TIME, SUBMITTED_LATE = "submitted_on_time", "submitted_late"
RETURNED, APPROVED = "returned", "approved"
REPORT_STATUSES = tuple(codes.REPORT_STATUSES)
SUBMITTED = (SUBMITTED_ON_TIME, SUBMITTED_LATE, RETURNED, APPROVED)


def _words(code_list, code: str) -> str:
    """A code's label as it reads inside a sentence."""
    return codes.label(code_list, code).lower()


# --- periods -----------------------------------------------------------------------------


def period_of(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def valid_period(text: Any) -> bool:
    """A month the API states it serves (years 2000-2099): the calendar arithmetic
    around a period (the month before, the year so far) stays in range."""
    return isinstance(text, str) and re.fullmatch(PERIOD_PATTERN, text) is not None


def first_day(period: str) -> date:
    return datetime.strptime(period, "%Y-%m").date()


def last_day(period: str) -> date:
    return first_day(next_period(period)) - timedelta(days=1)


def next_period(period: str) -> str:
    start = first_day(period)
    return f"{start.year + start.month // 12:04d}-{start.month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    start = first_day(period)
    return (start - timedelta(days=1)).strftime("%Y-%m")


def periods_between(first: str, last: str) -> list[str]:
    periods, current = [], first
    while current <= last:
        periods.append(current)
        current = next_period(current)
    return periods


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a month in Bengkulu, as UTC instants."""
    start = datetime.combine(first_day(period), time(), LOCAL_TZ)
    end = datetime.combine(first_day(next_period(period)), time(), LOCAL_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- deadlines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPolicy:
    """The reporting calendar (configuration): reports are expected from ``start_period``,
    due on ``due_day`` of the next month, announced ``due_soon_days`` before, and a period
    locks ``lock_after_days`` after its end unless an officer reopens it."""

    start_period: str = "2026-01"
    due_day: int = 7
    due_soon_days: int = 3
    lock_after_days: int = 30

    def __post_init__(self):
        if not valid_period(self.start_period):
            raise ValueError(f"REPORT_START_PERIOD {self.start_period!r} is not YYYY-MM")
        if not 1 <= self.due_day <= 28:
            raise ValueError("REPORT_DUE_DAY must be between 1 and 28")
        if self.due_soon_days < 0 or self.lock_after_days < 0:
            raise ValueError("report day counts cannot be negative")

    def due_on(self, period: str) -> date:
        return first_day(next_period(period)).replace(day=self.due_day)

    def due_soon_from(self, period: str) -> date:
        return self.due_on(period) - timedelta(days=self.due_soon_days)

    def locks_after(self, period: str) -> date:
        """The last day on which the period is open to submissions."""
        return last_day(period) + timedelta(days=self.lock_after_days)

    def locked(self, period: str, today: date, reopened: bool) -> bool:
        return not reopened and today > self.locks_after(period)

    def periods_to_check(self, today: date) -> list[str]:
        """Periods that have ended by ``today`` (only they can be due), from the start."""
        last_ended = previous_period(today.strftime("%Y-%m"))
        return periods_between(self.start_period, last_ended)

    def notice_due(self, period: str, today: date, submitted: bool) -> str | None:
        """The notice a report needs today: ``due_soon`` in the days before the due date,
        ``overdue`` after it, nothing once submitted."""
        if submitted:
            return None
        due = self.due_on(period)
        if today > due:
            return "overdue"
        if today >= self.due_soon_from(period):
            return "due_soon"
        return None

    def status_today(self, stored: str, period: str, today: date) -> str:
        """An unsubmitted report is missing the day after its due date, even before the
        timer has noticed."""
        if stored == OPEN and today > self.due_on(period):
            return MISSING
        return stored

    def timeliness(self, period: str, submitted_on: date) -> str:
        return SUBMITTED_ON_TIME if submitted_on <= self.due_on(period) else SUBMITTED_LATE


@dataclass(frozen=True)
class AgreementTerm:
    valid_from: date
    valid_until: date
    terminated_on: date | None = None
    annual_target: int | None = None

    @property
    def ends(self) -> date:
        if self.terminated_on is not None:
            return min(self.valid_until, self.terminated_on)
        return self.valid_until


def owes_report(agreements: Iterable[AgreementTerm], period: str) -> bool:
    """A partner owes a report for a month in which any of its agreements was valid, even
    for part of the month."""
    start, end = first_day(period), last_day(period)
    return any(a.valid_from <= end and a.ends >= start for a in agreements)


def agreement_in_force(agreements: Iterable[AgreementTerm], period: str) -> AgreementTerm | None:
    """The latest agreement valid in the month (a renewal wins over the one it renews)."""
    start, end = first_day(period), last_day(period)
    valid = [a for a in agreements if a.valid_from <= end and a.ends >= start]
    return max(valid, key=lambda a: a.valid_from, default=None)


# --- review ----------------------------------------------------------------------------------


class ReviewRefused(Exception):
    """A review step not allowed from the report's status (the caller maps it to 409)."""


def after_submission(status: str, timeliness: str) -> str:
    """A partner submits, and may resubmit until the report is approved."""
    if status == APPROVED:
        raise ReviewRefused("Laporan yang sudah disetujui tidak dapat diubah.")
    return timeliness


def after_reopen(status: str) -> str:
    """An officer reopens a period (locked, or its report approved) for the partner to
    submit again: an approved report goes back to ``returned``, to be corrected,
    resubmitted and reviewed again; any other keeps its status. A report submitted for
    the first time after the due date stays late (``ReportPolicy.timeliness``), and one
    already submitted keeps the timeliness of its first submission."""
    return RETURNED if status == APPROVED else status


def after_review(status: str, decision: str) -> str:
    if status not in (SUBMITTED_ON_TIME, SUBMITTED_LATE):
        raise ReviewRefused(
            "Hanya laporan yang sudah dikirim dan belum ditinjau yang dapat ditinjau."
        )
    return APPROVED if decision == "approve" else RETURNED


# --- content and validation rules ----------------------------------------------------------


@dataclass(frozen=True)
class RuleBreach:
    rule: str
    field: str
    message: str


RULES = {
    "non_negative": "Tidak ada angka negatif.",
    "balance": "Awal + masuk − selesai − putus − dipindahkan = akhir.",
    "by_sex_sums_to_total": "Jumlah menurut jenis kelamin sama dengan total.",
    "by_service_type_sums_to_total": "Jumlah menurut jenis layanan sama dengan total.",
    "start_equals_previous_end": "Klien awal bulan sama dengan klien akhir bulan laporan lalu.",
    "sex_served": "Mitra khusus perempuan/laki-laki tidak melaporkan klien di luar layanannya.",
    "service_offered": "Klien hanya dilaporkan pada jenis layanan yang diberikan mitra.",
    "narrative_required": "Narasi laporan diisi.",
}


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(MEASURES, 0)


def _where(field_path: str) -> str:
    parts = field_path.split(".")
    if parts[0] == "total":
        return "total"
    if parts[0] == "by_sex":
        return f"jenis kelamin {_words(SEXES, parts[1])}"
    return f"layanan {_words(SERVICE_TYPES, parts[1])}"


def _groups(counts: Mapping[str, Any]) -> list[tuple[str, Mapping[str, int]]]:
    groups = [("total", counts["total"])]
    groups += [(f"by_sex.{k}", v) for k, v in sorted(counts.get("by_sex", {}).items())]
    groups += [
        (f"by_service_type.{k}", v) for k, v in sorted(counts.get("by_service_type", {}).items())
    ]
    return groups


def validate_report(
    content: Mapping[str, Any],
    previous_end: Mapping[str, Any] | None = None,
    sex_served: str | None = None,
    services_offered: Iterable[str] | None = None,
) -> list[RuleBreach]:
    """Every rule a report breaks (an empty list: consistent). ``previous_end`` is the
    client count at the end of the previous month's report, where there is one."""
    breaches: list[RuleBreach] = []
    counts = content["counts"]

    def breach(rule: str, field_path: str, message: str) -> None:
        breaches.append(RuleBreach(rule, field_path, message))

    for path, group in _groups(counts):
        for measure in MEASURES:
            if group.get(measure, 0) < 0:
                breach(
                    "non_negative",
                    f"counts.{path}.{measure}",
                    f"Angka {_words(MEASURES, measure)} ({_where(path)}) tidak boleh negatif.",
                )
    for section, keys in (
        ("services_delivered", SERVICES_DELIVERED),
        ("capacity_building", CAPACITY_BUILDING),
    ):
        for key in keys:
            if content.get(section, {}).get(key, 0) < 0:
                breach(
                    "non_negative",
                    f"{section}.{key}",
                    f"Angka {section}.{key} tidak boleh negatif.",
                )

    for path, group in _groups(counts):
        g = {m: group.get(m, 0) for m in MEASURES}
        expected = (
            g["start"] + g["admitted"] - g["completed"] - g["dropped_out"] - g["transferred_out"]
        )
        if expected != g["end"]:
            breach(
                "balance",
                f"counts.{path}",
                f"{_where(path).capitalize()}: awal {g['start']} + masuk {g['admitted']} − selesai "
                f"{g['completed']} − putus {g['dropped_out']} − dipindahkan "
                f"{g['transferred_out']} = {expected}, bukan akhir {g['end']}.",
            )

    for dimension, rule in (
        ("by_sex", "by_sex_sums_to_total"),
        ("by_service_type", "by_service_type_sums_to_total"),
    ):
        parts = counts.get(dimension) or {}
        if not parts:
            continue
        for measure in MEASURES:
            total = counts["total"].get(measure, 0)
            summed = sum(part.get(measure, 0) for part in parts.values())
            if summed != total:
                label = "jenis kelamin" if dimension == "by_sex" else "jenis layanan"
                breach(
                    rule,
                    f"counts.{dimension}.{measure}",
                    f"Jumlah {_words(MEASURES, measure)} menurut {label} ({summed}) tidak sama "
                    f"dengan total ({total}).",
                )

    if previous_end is not None:
        for path, group in _groups(counts):
            before = _lookup(previous_end, path)
            if before is not None and group.get("start", 0) != before:
                breach(
                    "start_equals_previous_end",
                    f"counts.{path}.start",
                    f"Klien awal bulan ({_where(path)}) {group.get('start', 0)} tidak sama dengan "
                    f"klien akhir bulan laporan lalu ({before}).",
                )

    not_served = {"female": "M", "male": "F"}.get(sex_served or "all")
    if not_served:
        group = (counts.get("by_sex") or {}).get(not_served) or {}
        if any(group.get(m, 0) for m in MEASURES):
            breach(
                "sex_served",
                f"counts.by_sex.{not_served}",
                f"Mitra ini tidak melayani klien {_words(SEXES, not_served)}; angkanya harus 0.",
            )
    if services_offered is not None:
        offered = set(services_offered)
        for service_type, group in sorted((counts.get("by_service_type") or {}).items()):
            if service_type not in offered and any(group.get(m, 0) for m in MEASURES):
                breach(
                    "service_offered",
                    f"counts.by_service_type.{service_type}",
                    f"Mitra ini tidak memberikan layanan "
                    f"{_words(SERVICE_TYPES, service_type)}; angkanya harus 0.",
                )

    if not str(content.get("narrative") or "").strip():
        breach("narrative_required", "narrative", "Narasi laporan wajib diisi.")
    return breaches


def breaches_by_rule(breaches: Iterable[RuleBreach]) -> dict[str, list[str]]:
    named: dict[str, list[str]] = {}
    for b in breaches:
        named.setdefault(b.rule, []).append(b.message)
    return named


def _lookup(counts: Mapping[str, Any], path: str) -> int | None:
    node: Any = counts
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if not isinstance(node, Mapping) else node.get("end")


# --- what the referral events recorded ------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """A referral as laporan knows it (from rujukan's events): no client identity."""

    partner_id: str
    sex: str
    service_type: str
    age_group: str = ""
    source: str = ""
    requested_at: datetime | None = None
    responded_at: datetime | None = None
    accepted: bool | None = None  # True accepted, False rejected, None not answered
    admitted_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None  # completed | dropped_out | transferred
    # the discharge summary's codes (codes.DISCHARGE_OUTCOMES, codes.DISCHARGE_REASONS)
    discharge_outcome: str | None = None
    discharge_reasons: tuple[str, ...] = ()


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def _in_care_at(episode: Episode, instant: datetime) -> bool:
    return (
        episode.admitted_at is not None
        and episode.admitted_at < instant
        and (episode.ended_at is None or episode.ended_at >= instant)
    )


def episode_measures(episode: Episode, period: str) -> dict[str, int]:
    """What one episode adds to each measure of a partner's month."""
    start, end = period_bounds(period)
    figures = empty_counts()
    figures["start"] = int(_in_care_at(episode, start))
    figures["end"] = int(_in_care_at(episode, end))
    figures["admitted"] = int(_in(episode.admitted_at, start, end))
    if episode.outcome and _in(episode.ended_at, start, end):
        figures[OUTCOMES[episode.outcome]] = 1
    return figures


def recorded_report_counts(episodes: Iterable[Episode], period: str) -> dict[str, Any]:
    """The counts of one partner's month as the referral events recorded them, in the
    shape of a report's ``counts``: the prefill."""
    total = empty_counts()
    by_sex = {sex: empty_counts() for sex in SEXES}
    by_service = {service: empty_counts() for service in SERVICE_TYPES}
    for episode in episodes:
        figures = episode_measures(episode, period)
        for measure, value in figures.items():
            total[measure] += value
            by_sex.setdefault(episode.sex, empty_counts())[measure] += value
            by_service.setdefault(episode.service_type, empty_counts())[measure] += value
    return {"total": total, "by_sex": by_sex, "by_service_type": by_service}


def discharge_counts(episodes: Iterable[Episode], period: str) -> dict[str, Any]:
    """How care ended in the month, from the discharge summaries: every ending counts in
    ``total``; those with a summary by outcome and by each reason named (an ending may
    name several reasons); ``without_summary`` those ended before summaries existed."""
    start, end = period_bounds(period)
    by_outcome = dict.fromkeys(codes.DISCHARGE_OUTCOMES, 0)
    by_reason = dict.fromkeys(codes.DISCHARGE_REASONS, 0)
    total = without = 0
    for episode in episodes:
        if not (episode.outcome and _in(episode.ended_at, start, end)):
            continue
        total += 1
        if episode.discharge_outcome is None:
            without += 1
            continue
        by_outcome[episode.discharge_outcome] = by_outcome.get(episode.discharge_outcome, 0) + 1
        for reason in episode.discharge_reasons:
            by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "total": total,
        "by_outcome": by_outcome,
        "by_reason": by_reason,
        "without_summary": without,
    }


def reconciliation_flags(
    reported: Mapping[str, Any], recorded: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every reported figure that differs from what the referral events recorded."""
    flags = []
    for path, group in _groups(reported):
        node: Any = recorded
        for part in path.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        for measure in MEASURES:
            mine, theirs = group.get(measure, 0), (node or {}).get(measure, 0)
            if mine != theirs:
                flags.append(
                    {"field": f"counts.{path}.{measure}", "reported": mine, "recorded": theirs}
                )
    return flags


# --- indicators (monev) -------------------------------------------------------------------

# declared once with the codes (the FHIR interface serves them as Measures too)
INDICATOR_DEFINITIONS = codes.INDICATOR_DEFINITIONS


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """A rate with four decimals, or None where nothing was expected (no denominator)."""
    return round(numerator / denominator, 4) if denominator else None


@dataclass
class PartnerMonth:
    """Everything the indicators of one partner's month are computed from."""

    partner_id: str
    expected: bool = False
    report_status: str | None = None
    report_on_time: bool = False
    capacity: int = 0
    annual_target: int | None = None
    episodes: list[Episode] = field(default_factory=list)
    # the same figures counted by the database (``referral_figures``' shape), used
    # instead of ``episodes`` where given: a period's indicators at a million referrals
    figures: dict[str, Any] | None = None


def year_start(period: str) -> datetime:
    """The first instant of the period's year in Bengkulu, as UTC."""
    return datetime.combine(first_day(period).replace(month=1), time(), LOCAL_TZ).astimezone(UTC)


def referral_figures(
    episodes: Iterable[Episode], period: str, year_start: datetime
) -> dict[str, Any]:
    """What a partner's referrals add to its indicators of a period (counted by the
    database in services/laporan/queries.py, to the same definitions)."""
    start, end = period_bounds(period)
    figures: Counter[str] = Counter()
    response_hours: list[float] = []
    for e in episodes:
        if _in(e.requested_at, start, end):
            figures["requested"] += 1
        if _in(e.admitted_at, start, end):
            figures["admitted"] += 1
        if _in(e.responded_at, start, end) and e.accepted is not None:
            figures["accepted" if e.accepted else "rejected"] += 1
            if e.requested_at is not None and e.responded_at is not None:
                response_hours.append((e.responded_at - e.requested_at) / timedelta(hours=1))
        if e.outcome and _in(e.ended_at, start, end):
            figures[OUTCOMES[e.outcome]] += 1
            if e.discharge_outcome:
                figures[discharge_figure(e.discharge_outcome)] += 1
        if _in_care_at(e, end):
            figures["in_care_at_end"] += 1
        if _in(e.admitted_at, year_start, end):
            figures["admitted_this_year"] += 1
    return {"counts": figures, "response_hours": response_hours}


def discharge_figure(outcome: str) -> str:
    """The indicators' figure counting endings of one outcome (``discharged_improved``)."""
    return f"discharged_{outcome}"


DISCHARGE_FIGURES = tuple(discharge_figure(outcome) for outcome in codes.DISCHARGE_OUTCOMES)


def indicators(months: Iterable[PartnerMonth], period: str) -> dict[str, Any]:
    """Indicators of each partner and of the province (sums of numerators over sums of
    denominators; the province's median over all responses)."""
    begins = year_start(period)
    rows, totals = [], Counter()
    all_hours: list[float] = []
    for month in months:
        figures = month.figures
        if figures is None:
            figures = referral_figures(month.episodes, period, begins)
        c, hours = figures["counts"], figures["response_hours"]
        exits = c["completed"] + c["dropped_out"] + c["transferred_out"]
        part = {
            "expected_reports": int(month.expected),
            "submitted_reports": int(month.expected and month.report_status in SUBMITTED),
            "on_time_reports": int(month.expected and month.report_on_time),
            "requested": c["requested"],
            "accepted": c["accepted"],
            "answered": c["accepted"] + c["rejected"],
            "admitted": c["admitted"],
            "completed": c["completed"],
            "dropped_out": c["dropped_out"],
            "exits": exits,
            "in_care_at_end": c["in_care_at_end"],
            "capacity": month.capacity,
            "admitted_this_year": c["admitted_this_year"],
            "annual_target": month.annual_target or 0,
            # how care ended in the month, by the discharge summaries' outcome
            **{name: c[name] for name in DISCHARGE_FIGURES},
        }
        totals.update(part)
        all_hours.extend(hours)
        rows.append({"partner_id": month.partner_id, **_rates(part, hours), "figures": part})
    province = {**_rates(totals, all_hours), "figures": dict(totals)}
    return {
        "period": period,
        "partners": rows,
        "province": province,
        "definitions": INDICATOR_DEFINITIONS,
    }


def _rates(part: Mapping[str, int], hours: list[float]) -> dict[str, Any]:
    return {
        "reporting_rate": ratio(part["submitted_reports"], part["expected_reports"]),
        "on_time_rate": ratio(part["on_time_reports"], part["expected_reports"]),
        "acceptance_rate": ratio(part["accepted"], part["answered"]),
        "median_response_hours": round(statistics.median(hours), 2) if hours else None,
        "completion_rate": ratio(part["completed"], part["exits"]),
        "dropout_rate": ratio(part["dropped_out"], part["exits"]),
        "occupancy": ratio(part["in_care_at_end"], part["capacity"]),
        "target_reached": ratio(part["admitted_this_year"], part["annual_target"]),
    }


# --- national export ------------------------------------------------------------------------

EXPORT_DIMENSIONS = ("sex", "age_group", "service_type", "source")


def suppress(cells: Mapping[str, int], threshold: int) -> dict[str, int | None]:
    """Hide counts from 1 to ``threshold - 1`` (None), and where a total would reveal a
    single hidden cell, hide the next smallest cell too, so none can be worked back."""
    shown: dict[str, int | None] = {k: (None if 0 < v < threshold else v) for k, v in cells.items()}
    hidden = [k for k, v in shown.items() if v is None]
    if len(hidden) == 1:
        candidates = sorted((v, k) for k, v in cells.items() if shown[k] is not None and v > 0)
        if candidates:
            shown[candidates[0][1]] = None
    return shown


def export_partner(episodes: Iterable[Episode], period: str, threshold: int) -> dict[str, Any]:
    """A partner's month, de-identified: admissions by each dimension and exits by outcome,
    small cells suppressed. No referral, pseudonym or date appears."""
    start, end = period_bounds(period)
    admitted: dict[str, Counter[str]] = {d: Counter() for d in EXPORT_DIMENSIONS}
    outcomes: Counter[str] = Counter(dict.fromkeys(OUTCOMES.values(), 0))
    total = 0
    for e in episodes:
        if _in(e.admitted_at, start, end):
            total += 1
            for dimension in EXPORT_DIMENSIONS:
                admitted[dimension][getattr(e, dimension) or "unknown"] += 1
        if e.outcome and _in(e.ended_at, start, end):
            outcomes[OUTCOMES[e.outcome]] += 1
    shown_total = suppress({"total": total}, threshold)["total"]
    return {
        "admitted_total": shown_total,
        "admitted": {
            f"by_{d}": suppress(dict(sorted(admitted[d].items())), threshold)
            for d in EXPORT_DIMENSIONS
        },
        "outcomes": suppress(dict(outcomes), threshold),
    }


def export_rows(partners: Iterable[Mapping[str, Any]], period: str) -> list[dict[str, Any]]:
    """The recap in long form (one cell a row), for CSV."""
    rows = []
    for partner in partners:
        base = {
            "period": period,
            "partner_id": partner["partner_id"],
            "kabupaten_kota": partner.get("kabupaten_kota") or "",
        }
        cells = [("admitted", "total", partner["admitted_total"])]
        for dimension, values in partner["admitted"].items():
            cells += [(f"admitted_{dimension}", k, v) for k, v in values.items()]
        cells += [("outcome", k, v) for k, v in partner["outcomes"].items()]
        for measure, category, value in cells:
            rows.append(
                {
                    **base,
                    "measure": measure,
                    "category": category,
                    "value": "" if value is None else value,
                    "suppressed": value is None,
                }
            )
    return rows
