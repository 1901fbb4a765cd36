from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy.exc import IntegrityError

from bersinar.attachment_rpc import AttachmentEntrypoints
from bersinar.base import ServiceBase
from bersinar.clock import Clock
from bersinar.codes import local_date
from bersinar.contracts.referrals import (
    AdmitInput,
    AuditQuery,
    ClientCorrection,
    ClientInput,
    ClientSearch,
    ConsentWithdrawal,
    EndingInput,
    MatchQuery,
    ReferralCreate,
    ReferralSearch,
    RejectInput,
    TransferInput,
    TransitionInput,
    UndoInput,
)
from bersinar.entrypoints import Database, event_handler, rpc
from bersinar.timers import timer
from services.rujukan import handlers, metrics
from services.rujukan.crypto import ClientCipher
from services.rujukan.domain import Actor, DeadlinePolicy, LetterNumbering
from services.rujukan.models import Base, attachments

TRANSITION_INPUTS = {
    "admit": AdmitInput,
    "reject": RejectInput,
    "transfer": TransferInput,
    "complete": EndingInput,
    "drop_out": EndingInput,
    "drop-out": EndingInput,
}


class Cipher(DependencyProvider):
    """Keys come from the environment (through config); without them the service does
    not start rather than store identity in the clear."""

    def setup(self):
        config = self.container.config
        self.cipher = ClientCipher(
            str(config.get("ENCRYPTION_KEYS") or ""), str(config.get("NIK_HMAC_KEY") or "")
        )

    def get_dependency(self, worker_ctx):
        return self.cipher


class Deadlines(DependencyProvider):
    """How long a partner has to answer a request: RESPONSE_DEADLINE_HOURS, and
    RESPONSE_DEADLINE_HOURS_BY_SOURCE such as ``court=24,TAT=72``. A bad value stops
    the service at start rather than at the first referral."""

    def setup(self):
        config = self.container.config
        self.policy = DeadlinePolicy.from_config(
            config.get("RESPONSE_DEADLINE_HOURS", 48),
            config.get("RESPONSE_DEADLINE_HOURS_BY_SOURCE"),
        )

    def get_dependency(self, worker_ctx):
        return self.policy


class Numbering(DependencyProvider):
    """How letter numbers are written (LETTER_NUMBER_FORMAT); a bad scheme stops the
    service at start rather than at the first letter."""

    def setup(self):
        self.numbering = LetterNumbering.from_config(
            self.container.config.get("LETTER_NUMBER_FORMAT")
        )

    def get_dependency(self, worker_ctx):
        return self.numbering


class RujukanService(AttachmentEntrypoints, ServiceBase):
    name = "rujukan"
    uow = Database(Base.metadata)
    cipher = Cipher()
    config = Config()
    attachment_rows = attachments
    attachment_of = "referral"

    def attachment_owner(self, uow, owner, caller):
        return handlers.attachment_owner(uow, caller, owner[0])

    def attachment_seal(self):
        return handlers.sealing(self.cipher)

    def attachment_audit(self, uow, owner_id, caller, purpose, now):
        handlers.audit_attachment(uow, caller, owner_id, purpose, now)

    clock = Clock()
    deadlines = Deadlines()
    numbering = Numbering()

    # --- commands -------------------------------------------------------------------

    @rpc
    def create_referral(self, payload, actor, request_key=None):
        command = ReferralCreate().load(payload or {})
        try:
            with self.uow() as uow:
                referral = handlers.create_referral(
                    uow, self.cipher, command, actor, self.clock.now(), self.deadlines, request_key
                )
                uow.commit()
        except IntegrityError:
            if not request_key:
                raise
            # the same request carried out at the same moment (the broker delivered the
            # call again while the first was running): answer with what that one made
            with self.uow() as uow:
                referral = handlers.create_referral(
                    uow, self.cipher, command, actor, self.clock.now(), self.deadlines, request_key
                )
                uow.commit()
        metrics.observe_committed(uow.events)
        return referral

    @rpc
    def transition_referral(self, referral_id, action, payload, actor):
        """accept, reject, admit, complete, drop-out, cancel or transfer."""
        command = TRANSITION_INPUTS.get(action, TransitionInput)().load(payload or {})
        with self.uow() as uow:
            referral = handlers.transition(
                uow,
                actor,
                referral_id,
                action,
                command,
                self.clock.now(),
                self.deadlines,
                self.cipher,
            )
            uow.commit()
        metrics.observe_committed(uow.events)
        return referral

    @rpc
    def withdraw_consent(self, referral_id, payload, actor):
        """The client withdraws consent (told to an officer): recorded on every referral
        of the client, identity hidden from partners from then on."""
        command = ConsentWithdrawal().load(payload or {})
        with self.uow() as uow:
            result = handlers.withdraw_consent(uow, actor, referral_id, command, self.clock.now())
            uow.commit()
        return result

    @rpc
    def undo_transition(self, referral_id, payload, actor):
        """An admin undoes the referral's last transition, with a reason."""
        command = UndoInput().load(payload or {})
        with self.uow() as uow:
            result = handlers.undo_transition(uow, actor, referral_id, command, self.clock.now())
            uow.commit()
        metrics.observe_committed(uow.events)
        return result

    @rpc
    def correct_client(self, client_id, payload, actor):
        """An admin corrects a client's identity, with a reason (audited)."""
        command = ClientCorrection().load(payload or {})
        with self.uow() as uow:
            result = handlers.correct_client(
                uow, self.cipher, actor, client_id, command, self.clock.now()
            )
            uow.commit()
        metrics.observe_committed(uow.events)
        return result

    @timer("RESPONSE_DEADLINE_CHECK_SECONDS", 60, eager=True)
    def check_response_deadlines(self):
        """Runs in every instance; the database lets each overdue request be told once."""
        emitted = 0
        while True:
            with self.uow() as uow:
                batch = handlers.emit_overdue_responses(uow, self.clock.now())
                uow.commit()
            metrics.observe_committed(uow.events)
            emitted += batch
            if batch == 0:
                break
        with self.uow() as uow:
            metrics.set_occupancy(handlers.occupancy(uow))
        metrics.DEADLINE_SCANS.labels(self.name).inc()
        return emitted

    @timer("FOLLOW_UP_CHECK_SECONDS", 300, eager=True)
    def check_follow_ups(self):
        """Runs in every instance; the database lets each follow-up day be told once."""
        emitted = 0
        while True:
            with self.uow() as uow:
                batch = handlers.emit_follow_up_reminders(uow, self.clock.now())
                uow.commit()
            metrics.observe_committed(uow.events)
            emitted += batch
            if batch == 0:
                return emitted

    # --- queries --------------------------------------------------------------------

    @rpc
    def list_referrals(self, params, actor):
        filters = ReferralSearch().load(params or {})
        with self.uow() as uow:
            return handlers.list_referrals(uow, actor, filters)

    @rpc
    def get_referral(self, referral_id, actor, purpose=None):
        """With the client's identity: the read is written to the audit log."""
        with self.uow() as uow:
            referral = handlers.get_referral(
                uow, self.cipher, actor, referral_id, purpose, self.clock.now()
            )
            uow.commit()
        return referral

    @rpc
    def get_referral_summary(self, referral_id, actor):
        """One referral as lists show it: no identity, so no audit entry."""
        with self.uow() as uow:
            return handlers.referral_overview(uow, actor, referral_id)

    @rpc
    def referral_letter(self, referral_id, actor):
        """The referral and its letter's number (given on the first call, kept after):
        with the client's identity, so the read is written to the audit log."""
        with self.uow() as uow:
            letter = handlers.referral_letter(
                uow, self.cipher, actor, referral_id, self.numbering, self.clock.now()
            )
            uow.commit()
        return letter

    @rpc
    def referral_by_code(self, code, actor):
        """The referral a letter's short code names, for the caller (its id)."""
        with self.uow() as uow:
            return handlers.referral_by_code(uow, actor, code)

    @rpc
    def referral_history(self, referral_id, actor):
        with self.uow() as uow:
            return handlers.referral_history(uow, actor, referral_id)

    @rpc
    def check_client(self, payload, actor=None):
        """A client's identity checked as create_referral checks it; nothing is stored.
        Refusals by field, as create_referral's. Asked by staff (``actor``), the answer
        also names the client's open referrals (already referred or in care)."""
        client = ClientInput().load(payload or {})
        handlers.check_client(client, local_date(self.clock.now()))
        if actor is None or not Actor.parse(actor).is_staff:
            return {"valid": True}
        with self.uow() as uow:
            return {
                "valid": True,
                "open_referrals": handlers.open_referrals(uow, self.cipher, client["nik"]),
            }

    @rpc
    def search_clients(self, payload, actor):
        """Clients by NIK or name, with their referrals: identity shown, so audited."""
        query = ClientSearch().load(payload or {})
        with self.uow() as uow:
            found = handlers.search_clients(uow, self.cipher, actor, query, self.clock.now())
            uow.commit()
        return found

    @rpc
    def match_partners(self, params):
        query = MatchQuery().load(params or {})
        with self.uow() as uow:
            return handlers.match_partners(uow, query, self.clock.now())

    @rpc
    def occupancy(self):
        """Places taken and capacity of every service every partner offers."""
        with self.uow() as uow:
            return [
                {"partner_id": p, "service_type": s, "occupied": taken, "capacity": capacity}
                for p, s, taken, capacity in handlers.occupancy(uow)
            ]

    @rpc
    def places_taken(self, partner_id=None):
        """Places taken (active referrals) by partner and service type, of one partner
        when named: what the gateway's read model of the directory holds, read again
        whenever a referral event says a place was taken or given back."""
        with self.uow() as uow:
            return handlers.places_taken(uow, partner_id)

    @rpc
    def list_audit(self, params, actor):
        filters = AuditQuery().load(params or {})
        with self.uow() as uow:
            return handlers.list_audit(uow, actor, filters)

    # --- mitra's events: the partner read model -------------------------------------

    @event_handler("mitra", "partner_registered")
    def on_partner_registered(self, events):
        return self.uow.apply_once(events, handlers.apply_partner_snapshot)

    @event_handler("mitra", "partner_updated")
    def on_partner_updated(self, events):
        return self.uow.apply_once(events, handlers.apply_partner_snapshot)

    @event_handler("mitra", "agreement_signed")
    def on_agreement_signed(self, events):
        return self.uow.apply_once(events, handlers.apply_agreement)

    @event_handler("mitra", "agreement_terminated")
    def on_agreement_terminated(self, events):
        return self.uow.apply_once(events, handlers.apply_agreement_terminated)

    @event_handler("mitra", "agreement_expired")
    def on_agreement_expired(self, events):
        return self.uow.apply_once(events, handlers.apply_agreement_expired)
