"""Shapes of referrals (rujukan)."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bersinar import codes
from bersinar.contracts import (
    NOT_BLANK,
    AwareDateTime,
    Date,
    FullMatch,
    StrictBoolean,
    StrictSchema,
    one_of,
    page_limit,
    reason_field,
)

# ids of referrals, clients, partners, API keys: plain text that is safe in a query
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


def is_plain_id(value: str) -> bool:
    return bool(re.fullmatch(ID_PATTERN[1:-1], value or ""))


def _plain_id(value: str) -> None:
    if not is_plain_id(value):  # "$" alone would let a trailing newline through
        raise ValidationError("Pengenal tidak sah.")


PLAIN_ID = [validate.Regexp(ID_PATTERN, error="Pengenal tidak sah."), _plain_id]


# Free text people type is stored as text: no NUL or other control characters.
no_control_characters = FullMatch(
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Tidak boleh berisi karakter kendali."
)


def _text(max_length: int, **kwargs):
    return fields.String(
        validate=[validate.Length(max=max_length), no_control_characters], **kwargs
    )


def _client_fields(required: bool) -> dict[str, fields.Field]:
    """A client's identity fields, as a new referral states them (all required but the
    phone) or a correction does (any of them)."""
    return {
        "nik": fields.String(
            required=required,
            validate=FullMatch(r"^[0-9]{16}$", error="NIK harus 16 digit angka."),
            metadata={
                "description": "Kode provinsi yang dikenal, lalu kabupaten/kota dan kecamatan, "
                "tanggal lahir DDMMYY (tanggal + 40 untuk perempuan) yang sama dengan "
                "birth_date dan sex, dan nomor urut bukan 0000."
            },
        ),
        "name": fields.String(required=required, validate=validate.Length(min=1, max=200)),
        "birth_date": Date(
            required=required,
            metadata={"description": "Tidak di masa depan dan tidak lebih dari 110 tahun lalu."},
        ),
        "sex": fields.String(required=required, validate=one_of(codes.SEXES)),
        "phone": fields.String(
            allow_none=True,
            validate=FullMatch(r"^\+?[0-9]{8,15}$", error="Nomor telepon tidak valid."),
            **({"load_default": None} if required else {}),
        ),
    }


ClientInput = StrictSchema.from_dict(_client_fields(required=True), name="ClientInput")


class ConsentInput(StrictSchema):
    # false is the shape of a refusal, which rujukan answers CONSENT_REQUIRED
    given = StrictBoolean(required=True, metadata={"enum": [True]})
    given_by = fields.String(load_default="client", validate=one_of(codes.CONSENT_GIVERS))
    given_at = AwareDateTime(load_default=None, allow_none=True)
    scope = fields.List(
        fields.String(validate=validate.Length(max=64)),
        load_default=lambda: ["treatment", "data_sharing"],
    )
    guardian_name = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(min=1, max=200), no_control_characters],
        metadata={
            "description": "Nama wali yang memberi persetujuan: wajib bila klien di "
            "bawah 18 tahun (disimpan terenkripsi)"
        },
    )
    guardian_relationship = fields.String(
        load_default=None,
        allow_none=True,
        validate=one_of(codes.GUARDIAN_RELATIONSHIPS),
        metadata={"description": "Hubungan wali dengan klien: wajib bila klien di bawah 18 tahun"},
    )


class SubstanceScore(StrictSchema):
    substance = fields.String(required=True, validate=validate.Length(min=1, max=64))
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=39))


class AssessmentInput(StrictSchema):
    primary_substance = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=64)
    )
    assist_scores = fields.List(fields.Nested(SubstanceScore), load_default=list)
    recommended_level_of_care = fields.String(
        load_default=None, allow_none=True, validate=one_of(codes.SERVICE_TYPES)
    )
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ReferralCreate(StrictSchema):
    client = fields.Nested(ClientInput, required=True)
    source = fields.String(required=True, validate=one_of(codes.REFERRAL_SOURCES))
    service_type = fields.String(required=True, validate=one_of(codes.SERVICE_TYPES))
    partner_id = fields.String(required=True, validate=PLAIN_ID)
    consent = fields.Nested(ConsentInput, required=True)
    assessment = fields.Nested(AssessmentInput, load_default=None, allow_none=True)


TRANSITION_ACTIONS = ("accept", "reject", "admit", "complete", "drop-out", "cancel", "transfer")


def _page_fields():
    return {
        "limit": page_limit(),
        "cursor": fields.String(load_default=None, validate=PLAIN_ID),
    }


class TransitionInput(StrictSchema):
    """accept, admit, complete, drop-out, cancel: a note is optional."""

    note = _text(1000, load_default=None, allow_none=True)


class AdmitInput(TransitionInput):
    admitted_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Hari klien mulai dilayani (WIB): hari ini atau sebelumnya, tidak "
            "sebelum rujukan diterima; tanpa ini, saat dicatat"
        },
    )


class RejectInput(TransitionInput):
    reason = fields.String(required=True, validate=one_of(codes.REJECTION_REASONS))

    # rujukan refuses reason "other" without a note that says something
    OPENAPI = {
        "oneOf": [
            {
                "properties": {
                    "reason": {"enum": ["other"]},
                    "note": {"type": "string", "pattern": NOT_BLANK},
                },
                "required": ["reason", "note"],
            },
            {
                "properties": {
                    "reason": {"enum": [r for r in codes.REJECTION_REASONS if r != "other"]}
                }
            },
        ]
    }


def _distinct(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Setiap alasan cukup disebut sekali.")


class DischargeInput(StrictSchema):
    """How care ended (complete, drop-out, transfer): the outcome, why, the aftercare
    plan and the day to follow the client up. The plan is case data: it is shown with
    the referral, never carried by an event."""

    outcome = fields.String(required=True, validate=one_of(codes.DISCHARGE_OUTCOMES))
    reasons = fields.List(
        fields.String(validate=one_of(codes.DISCHARGE_REASONS)),
        required=True,
        validate=[
            validate.Length(
                min=1,
                max=len(codes.DISCHARGE_REASONS),
                error=(f"Pilih 1 sampai {len(codes.DISCHARGE_REASONS)} alasan."),
            ),
            _distinct,
        ],
        metadata={"uniqueItems": True},
    )
    aftercare_plan = _text(
        2000,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Rencana pasca rehabilitasi (teks bebas, tidak dikirim ke layanan lain)"
        },
    )
    follow_up_on = Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Hari tindak lanjut pasca rehabilitasi (WIB): sesudah hari "
            f"layanan berakhir, paling lama {codes.FOLLOW_UP_MAX_DAYS} hari sesudahnya; "
            "mitra diingatkan sekali pada hari itu"
        },
    )


class EndingInput(TransitionInput):
    """complete, drop-out: care ends with a discharge summary."""

    discharge = fields.Nested(DischargeInput, required=True)


class TransferInput(StrictSchema):
    partner_id = fields.String(required=True, validate=PLAIN_ID)
    service_type = fields.String(
        load_default=None, allow_none=True, validate=one_of(codes.SERVICE_TYPES)
    )
    reason = _text(1000, load_default=None, allow_none=True)
    discharge = fields.Nested(DischargeInput, required=True)
    consent = fields.Nested(
        ConsentInput,
        required=True,
        metadata={
            "description": "Persetujuan klien (atau walinya bila di bawah 18 tahun) agar "
            "data dan identitasnya diberikan kepada mitra tujuan; rujukan baru menyimpannya"
        },
    )


class ReferralFilter(StrictSchema):
    status = fields.String(validate=one_of(codes.REFERRAL_STATUSES))
    partner_id = fields.String(validate=PLAIN_ID)
    client_id = fields.String(validate=PLAIN_ID)
    limit = _page_fields()["limit"]
    cursor = _page_fields()["cursor"]


class ReferralSearch(ReferralFilter):
    """What rujukan's list also filters by, for the FHIR interface's Task search: any of
    several statuses, and a window of last change (from inclusive, before exclusive)."""

    statuses = fields.List(fields.String(validate=one_of(codes.REFERRAL_STATUSES)))
    updated_from = AwareDateTime()
    updated_before = AwareDateTime()
    # a Bulk Data export's own random key (hex): every referral comes de-identified, its
    # client only as an HMAC of the pseudonym under this key, so two exports can't be joined
    pseudonym_key = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    # the console's list shows how many referrals its filters hold (one count query)
    with_total = fields.Boolean(load_default=False)


class ClientSearch(StrictSchema):
    """A search for clients by exact NIK or by name (every word, in any order, accents and
    punctuation ignored), narrowed by their referrals' partner, status, service type and
    date of referral. In a body, never a URL: a NIK is not to reach an access log."""

    nik = fields.String(
        validate=FullMatch(r"^[0-9]{16}$", error="NIK harus 16 digit angka."),
        metadata={"description": "NIK lengkap (dicari lewat digest berkunci, bukan teks)"},
    )
    name = fields.String(
        validate=[
            validate.Length(min=2, max=200),
            FullMatch(
                r"^[^\x00-\x1f\x7f]*[0-9A-Za-z][^\x00-\x1f\x7f]*$",
                error="Tulis sedikitnya satu kata nama.",
            ),
        ],
        metadata={"description": "Kata-kata nama klien; setiap kata harus cocok utuh"},
    )
    partner_id = fields.String(validate=PLAIN_ID)
    status = fields.String(validate=one_of(codes.REFERRAL_STATUSES))
    service_type = fields.String(validate=one_of(codes.SERVICE_TYPES))
    referred_from = Date(metadata={"description": "Dirujuk pada atau sesudah hari ini (WIB)"})
    referred_until = Date(metadata={"description": "Dirujuk pada atau sebelum hari ini (WIB)"})
    page = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=10000))
    limit = fields.Integer(strict=True, load_default=20, validate=validate.Range(min=1, max=50))

    OPENAPI = {"anyOf": [{"required": ["nik"]}, {"required": ["name"]}]}

    @validates_schema
    def _nik_or_name(self, data, **kwargs):
        if not data.get("nik") and not data.get("name"):
            raise ValidationError("Isi NIK atau nama klien.", "_schema")
        until, since = data.get("referred_until"), data.get("referred_from")
        if until and since and until < since:
            raise ValidationError("Harus pada atau sesudah referred_from.", "referred_until")


class ConsentWithdrawal(StrictSchema):
    """The client withdraws consent, told to an officer: from then on the receiving
    partner sees no identity and no new referral is made without new consent."""

    withdrawn_on = Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Hari klien mencabut persetujuan (WIB): hari ini atau "
            "sebelumnya, tidak sebelum rujukan dibuat; tanpa ini, hari ini"
        },
    )
    note = _text(1000, load_default=None, allow_none=True)


class _ClientCorrectionReason(StrictSchema):
    reason = reason_field(metadata={"description": "Alasan koreksi (dicatat di riwayat)"})


# An admin corrects a client's identity: the fields to correct (the others stay as
# stored) and why. The result is checked as a new referral's client is (the NIK agrees
# with birth date and sex).
ClientCorrection = _ClientCorrectionReason.from_dict(
    _client_fields(required=False), name="ClientCorrection"
)


class UndoInput(StrictSchema):
    """An admin undoes a referral's last transition: why, and the status the admin saw
    (the undo is refused 409 STATUS_CHANGED if the referral has moved since)."""

    expected_status = fields.String(required=True, validate=one_of(codes.REFERRAL_STATUSES))
    reason = reason_field(metadata={"description": "Alasan pembatalan (dicatat di riwayat)"})


class ReferralReadQuery(StrictSchema):
    purpose = fields.String(
        load_default=None,
        validate=[validate.Length(min=1, max=200), no_control_characters],
        metadata={"description": "Mengapa data identitas klien dibuka (dicatat di log audit)."},
    )


class MatchQuery(StrictSchema):
    sex = fields.String(required=True, validate=one_of(codes.SEXES))
    service_type = fields.String(required=True, validate=one_of(codes.SERVICE_TYPES))
    kabupaten_kota = fields.String(
        load_default=None, validate=[validate.Length(min=1, max=100), no_control_characters]
    )


class AuditQuery(StrictSchema):
    referral_id = fields.String(validate=PLAIN_ID)
    actor = fields.String(validate=[validate.Length(min=1, max=100), no_control_characters])
    partner_id = fields.String(validate=PLAIN_ID)
    limit = _page_fields()["limit"]
    cursor = _page_fields()["cursor"]


class ClientIdentity(Schema):
    nik = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    birth_date = fields.String()


class ClientSummary(Schema):
    id = fields.String(metadata={"description": "Pseudonim klien"})
    sex = fields.String()
    age_group = fields.String()
    previous_referrals = fields.Integer()
    identity = fields.Nested(
        ClientIdentity,
        allow_none=True,
        metadata={
            "description": "Hanya pada GET /referrals/{id}; dicatat. Kosong (null) bagi mitra "
            "bila klien telah mencabut persetujuannya."
        },
    )


class Episode(Schema):
    id = fields.String()
    partner_id = fields.String()
    service_type = fields.String()
    status = fields.String()
    created_at = fields.String()
    ended_at = fields.String(allow_none=True)


class Referral(Schema):
    id = fields.String()
    status = fields.String(validate=one_of(codes.REFERRAL_STATUSES))
    partner_id = fields.String()
    service_type = fields.String()
    source = fields.String()
    previous_referral_id = fields.String(allow_none=True)
    transferred_from_id = fields.String(allow_none=True)
    transferred_to_id = fields.String(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    client = fields.Nested(ClientSummary)
    response_due_at = fields.String(allow_none=True)
    response_overdue = fields.Boolean()
    responded_at = fields.String(allow_none=True)
    admitted_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class Discharge(Schema):
    outcome = fields.String(validate=one_of(codes.DISCHARGE_OUTCOMES))
    reasons = fields.List(fields.String(validate=one_of(codes.DISCHARGE_REASONS)))
    aftercare_plan = fields.String(
        allow_none=True, metadata={"description": "Tidak diberikan kepada sistem nasional"}
    )
    follow_up_on = fields.String(allow_none=True)
    follow_up_reminded_at = fields.String(allow_none=True)
    recorded_by = fields.String(allow_none=True)
    recorded_at = fields.String()


class ReferralDetail(Referral):
    discharge = fields.Nested(
        Discharge, allow_none=True, metadata={"description": "Ringkasan akhir layanan"}
    )
    consent = fields.Dict()
    assessment = fields.Dict(allow_none=True)
    created_by = fields.String()
    episodes = fields.List(fields.Nested(Episode))


class ReferralTransition(Referral):
    transferred_to = fields.Nested(Referral, metadata={"description": "Hanya pada transfer"})


class HistoryEntry(Schema):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor = fields.String()
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    at = fields.String()
    discharge = fields.Nested(
        Discharge,
        allow_none=True,
        metadata={"description": "Pada perubahan yang mengakhiri layanan"},
    )


class ReferralHistory(Schema):
    referral_id = fields.String()
    items = fields.List(fields.Nested(HistoryEntry))


class PartnerMatch(Schema):
    partner_id = fields.String()
    partner_name = fields.String()
    kabupaten_kota = fields.String()
    sex_served = fields.String()
    service_type = fields.String()
    capacity = fields.Integer()
    occupied = fields.Integer()
    free = fields.Integer()
    same_kabupaten_kota = fields.Boolean()


class AuditEntry(Schema):
    id = fields.String()
    at = fields.String()
    actor = fields.String()
    actor_role = fields.String()
    actor_partner_id = fields.String(allow_none=True)
    referral_id = fields.String()
    client_id = fields.String()
    purpose = fields.String()
    correlation_id = fields.String(allow_none=True)


class FoundClient(Schema):
    id = fields.String(metadata={"description": "Pseudonim klien"})
    sex = fields.String()
    birth_date = fields.String()
    identity = fields.Nested(
        ClientIdentity,
        allow_none=True,
        metadata={
            "description": "Nama dan NIK (dicatat di log audit); kosong bagi mitra bila "
            "persetujuan klien telah dicabut"
        },
    )
    referrals = fields.List(fields.Nested(Referral))


class ClientSearchResult(Schema):
    items = fields.List(fields.Nested(FoundClient))
    total = fields.Integer()
    page = fields.Integer()
    pages = fields.Integer()
    previous_page = fields.Integer(allow_none=True)
    next_page = fields.Integer(allow_none=True)


class ConsentWithdrawn(Referral):
    consent_withdrawn_on = fields.String()
    referrals_affected = fields.List(
        fields.String(), metadata={"description": "Rujukan klien yang persetujuannya dicabut"}
    )


class ClientCorrected(Schema):
    id = fields.String(metadata={"description": "Pseudonim klien"})
    sex = fields.String()
    identity = fields.Nested(ClientIdentity)
    changed = fields.List(
        fields.String(), metadata={"description": "Bidang yang dikoreksi (nama bidang)"}
    )
    referrals_affected = fields.List(
        fields.String(), metadata={"description": "Rujukan klien yang riwayatnya mencatat koreksi"}
    )


class ReferralUndone(Referral):
    undone_status = fields.String(
        metadata={"description": "Status yang dibatalkan (rujukan kembali ke status sebelumnya)"}
    )
