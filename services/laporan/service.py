from __future__ import annotations

import logging

from nameko.dependency_providers import Config
from prometheus_client import Gauge

from bersinar.attachment_rpc import AttachmentEntrypoints
from bersinar.base import ServiceBase
from bersinar.clock import Clock
from bersinar.contracts.reports import ReopenInput, ReportInput, ReportQuery, ReviewInput
from bersinar.entrypoints import Database, event_handler, rpc
from bersinar.metrics import replace_samples
from bersinar.timers import timer
from services.laporan import domain, handlers, queries
from services.laporan.models import Base, attachments

log = logging.getLogger(__name__)

REPORTS = Gauge("bersinar_reports", "Monthly partner reports by status", ["status"])
OVERDUE = Gauge("bersinar_reports_overdue", "Reports past their due date and not submitted")
DIFFERENCES = Gauge(
    "bersinar_report_reconciliation_differences",
    "Figures in the latest submitted reports that differ from what referral events recorded",
)


def policy_from_config(config) -> domain.ReportPolicy:
    return domain.ReportPolicy(
        start_period=str(config.get("REPORT_START_PERIOD") or "2026-01"),
        due_day=int(config.get("REPORT_DUE_DAY") or 7),
        due_soon_days=int(config.get("REPORT_DUE_SOON_DAYS", 3)),
        lock_after_days=int(config.get("REPORT_LOCK_AFTER_DAYS", 30)),
    )


class LaporanService(AttachmentEntrypoints, ServiceBase):
    name = "laporan"
    uow = Database(Base.metadata)
    clock = Clock()
    config = Config()
    attachment_rows = attachments
    attachment_of = "report"

    def attachment_owner(self, uow, owner, caller):
        partner_id, period = owner
        return handlers.report_for_attachments(uow, caller, partner_id, period, self.policy)

    @property
    def policy(self) -> domain.ReportPolicy:
        return policy_from_config(self.config)

    # -- reports -------------------------------------------------------------------------

    @rpc
    def recorded_counts(self, period, partner_id=None):
        with self.uow() as uow:
            return handlers.recorded_counts(uow, str(period), partner_id)

    @rpc
    def list_reports(self, filters, caller):
        filters = ReportQuery().load(filters or {})
        with self.uow() as uow:
            return handlers.list_reports(uow, filters, caller, self.policy, self.clock.today())

    @rpc
    def get_report(self, partner_id, period, caller):
        with self.uow() as uow:
            return handlers.get_report(
                uow, str(partner_id), str(period), caller, self.policy, self.clock.today()
            )

    @rpc
    def submit_report(self, partner_id, period, payload, caller):
        command = ReportInput().load(payload or {})
        with self.uow() as uow:
            report = handlers.submit_report(
                uow, str(partner_id), str(period), command, caller, self.policy, self.clock.now()
            )
            uow.commit()
        return report

    @rpc
    def review_report(self, partner_id, period, decision, payload, caller):
        command = ReviewInput().load(payload or {})
        with self.uow() as uow:
            report = handlers.review_report(
                uow,
                str(partner_id),
                str(period),
                "approve" if decision == "approve" else "return",
                command,
                caller,
                self.policy,
                self.clock.now(),
            )
            uow.commit()
        return report

    @rpc
    def reopen_report(self, partner_id, period, payload, caller):
        command = ReopenInput().load(payload or {})
        with self.uow() as uow:
            report = handlers.reopen_report(
                uow, str(partner_id), str(period), command, caller, self.policy, self.clock.now()
            )
            uow.commit()
        return report

    @timer("REPORT_CHECK_INTERVAL", 300, eager=True)
    def check_reports(self):
        """Create the expected reports, emit report_due_soon / report_overdue when due
        (once, whichever instance gets there first) and refresh the gauges."""
        now = self.clock.now()
        with self.uow() as uow:
            sent = handlers.check_reports(uow, self.policy, now)
            uow.commit()
        with self.uow() as uow:
            figures = handlers.report_figures(uow, self.policy, domain.local_date(now))
        replace_samples(REPORTS, {(s,): n for s, n in figures["by_status"].items()})
        OVERDUE.set(figures["overdue"])
        DIFFERENCES.set(figures["differences"])
        return sent

    # -- monitoring and the national recap ---------------------------------------------------

    @rpc
    def indicators(self, period):
        with self.uow() as uow:
            return queries.indicators(uow, str(period), self.policy, self.clock.today())

    @rpc
    def monthly_export(self, period):
        threshold = int(self.config.get("EXPORT_SMALL_CELL_THRESHOLD") or 5)
        with self.uow() as uow:
            return handlers.monthly_export(uow, str(period), threshold)

    # -- what mitra tells ------------------------------------------------------------------

    @event_handler("mitra", "partner_registered")
    def on_partner_registered(self, events):
        return self.uow.apply_once(events, handlers.record_partner)

    @event_handler("mitra", "partner_updated")
    def on_partner_updated(self, events):
        return self.uow.apply_once(events, handlers.record_partner)

    @event_handler("mitra", "agreement_signed")
    def on_agreement_signed(self, events):
        return self.uow.apply_once(events, handlers.record_agreement_signed)

    @event_handler("mitra", "agreement_terminated")
    def on_agreement_terminated(self, events):
        return self.uow.apply_once(events, handlers.record_agreement_terminated)

    # -- what rujukan tells ----------------------------------------------------------------

    def _record_referral_events(self, events):
        return self.uow.apply_once(
            events, handlers.record_referral_event, prepare=handlers.preload_referral_records
        )

    @event_handler("rujukan", "referral_requested")
    def on_referral_requested(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_accepted")
    def on_referral_accepted(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_rejected")
    def on_referral_rejected(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_cancelled")
    def on_referral_cancelled(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_response_overdue")
    def on_referral_response_overdue(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_admitted")
    def on_referral_admitted(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_completed")
    def on_referral_completed(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_dropped_out")
    def on_referral_dropped_out(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_transferred")
    def on_referral_transferred(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "referral_transition_undone")
    def on_referral_transition_undone(self, events):
        return self._record_referral_events(events)

    @event_handler("rujukan", "client_corrected")
    def on_client_corrected(self, events):
        return self._record_referral_events(events)
