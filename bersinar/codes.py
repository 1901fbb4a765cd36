"""Every code list of Bersinar, defined once: the codes that travel in requests, events
and databases, each with the Indonesian words people read for it, and the province's
time zone. Everything else imports from here (docs/architecture.md#code-lists).

A list is a ``dict`` from code to label, in the order people see it: ``tuple(LIST)``
gives the codes (``validate.OneOf(tuple(SEXES))``), ``label(LIST, code)`` the words.
Plain Python: the domain modules import it too."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

# --- time ----------------------------------------------------------------------------

# Bengkulu keeps Western Indonesian Time (WIB, UTC+7, no daylight saving): "today", a
# month and a deadline are reckoned there, whatever the host's zone.
LOCAL_TZ = ZoneInfo("Asia/Jakarta")
LOCAL_TZ_LABEL = "WIB"


def local_date(moment: datetime) -> date:
    """The day in Bengkulu at ``moment`` (an aware datetime)."""
    return moment.astimezone(LOCAL_TZ).date()


MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)

# --- who ------------------------------------------------------------------------------

ROLES = {
    "admin": "Admin",
    "officer": "Petugas BNNP",
    "partner": "Operator mitra",
    "national": "Sistem nasional BNN",
    "ops": "Operasi",
}
# the roles of people (console accounts); the others are machines
PEOPLE = ("admin", "officer", "partner")
# BNNP staff: they see every partner's objects
STAFF = ("admin", "officer")

# --- clients and services ---------------------------------------------------------------

SEXES = {"M": "Laki-laki", "F": "Perempuan"}
SEX_SERVED = {"all": "Semua", "male": "Laki-laki saja", "female": "Perempuan saja"}
SERVICE_TYPES = {
    "inpatient": "Rawat inap",
    "outpatient": "Rawat jalan",
    "aftercare": "Pasca rehabilitasi",
}
# a referred client's age group (events and exports carry it, never a birth date)
CLIENT_AGE_GROUPS = {
    "0-17": "0-17 tahun",
    "18-24": "18-24 tahun",
    "25-34": "25-34 tahun",
    "35-44": "35-44 tahun",
    "45+": "45 tahun ke atas",
}

# --- referrals ----------------------------------------------------------------------------

REFERRAL_SOURCES = {
    "TAT": "TAT (Tim Asesmen Terpadu)",
    "IPWL": "IPWL (Institusi Penerima Wajib Lapor)",
    "voluntary": "Sukarela",
    "court": "Putusan pengadilan",
    "other": "Lainnya",
}
REFERRAL_STATUSES = {
    "requested": "Menunggu jawaban",
    "accepted": "Diterima",
    "rejected": "Ditolak",
    "cancelled": "Dibatalkan",
    "admitted": "Dalam layanan",
    "completed": "Selesai",
    "dropped_out": "Putus layanan",
    "transferred": "Dialihkan",
}
# who may take each action on a referral (after FHIR Task: the receiving partner moves
# the Task, BNNP's officers create, cancel and transfer); an admin may take any. The
# gateway refuses every other role (403) before rujukan checks the referral's state.
REFERRAL_ACTORS = {
    "accept": "partner",
    "reject": "partner",
    "admit": "partner",
    "complete": "partner",
    "drop_out": "partner",
    "cancel": "officer",
    "transfer": "officer",
}


def referral_action_roles(action: str) -> tuple[str, ...]:
    """The roles that may take ``action`` on a referral: its actor and an admin."""
    return ("admin", REFERRAL_ACTORS[action])


CONSENT_GIVERS = {"client": "Klien sendiri", "guardian": "Wali/keluarga"}
# who a minor's guardian is to the client (the guardian gives the consent)
GUARDIAN_RELATIONSHIPS = {
    "parent": "Orang tua",
    "sibling": "Saudara kandung",
    "grandparent": "Kakek/nenek",
    "relative": "Kerabat lain",
    "legal_guardian": "Wali yang ditetapkan",
}
# why a referral's history has an entry that is no lifecycle action: a consent withdrawn
# or an identity corrected (the status stays), the last transition undone (an admin's)
HISTORY_REASONS = {
    "consent_withdrawn": "Persetujuan klien dicabut",
    "identity_corrected": "Identitas klien dikoreksi",
    "transition_undone": "Langkah terakhir dibatalkan",
}
REJECTION_REASONS = {
    "capacity_full": "Kapasitas penuh",
    "not_eligible": "Tidak memenuhi syarat",
    "client_unreachable": "Klien tidak dapat dihubungi",
    "other": "Alasan lain",
}

# how care ended (a discharge summary, recorded by complete, drop-out and transfer): the
# client's state at the end, and why care ended (one or more reasons)
DISCHARGE_OUTCOMES = {
    "recovered": "Pulih (tidak memakai lagi)",
    "improved": "Membaik",
    "unchanged": "Tidak berubah",
    "worsened": "Memburuk",
    "referred_onward": "Dirujuk lanjut",
    "unknown": "Tidak diketahui",
}
DISCHARGE_REASONS = {
    "program_completed": "Program selesai",
    "self_discharge": "Keluar atas permintaan sendiri",
    "lost_contact": "Tidak kembali / tidak dapat dihubungi",
    "rule_violation": "Pelanggaran aturan lembaga",
    "relocation": "Pindah domisili",
    "medical": "Alasan medis",
    "legal": "Proses hukum",
    "transferred_to_partner": "Dialihkan ke mitra lain",
    "other": "Alasan lain",
}
# the longest follow-up after care ends (days after the end day)
FOLLOW_UP_MAX_DAYS = 365

# --- partners and agreements ----------------------------------------------------------

PARTNER_KINDS = {
    "hospital": "Rumah sakit",
    "foundation": "Yayasan",
    "clinic": "Klinik",
    "community": "Lembaga masyarakat",
    "other": "Lainnya",
}
PARTNER_STATUSES = {
    "active": "Aktif",
    "temporarily_closed": "Tutup sementara",
    "inactive": "Tidak aktif",
}
# the age groups a partner serves
SERVED_AGE_GROUPS = {"adolescent": "Remaja", "adult": "Dewasa", "elderly": "Lanjut usia"}
AGREEMENT_STATUSES = {
    "draft": "Belum berlaku",
    "active": "Berlaku",
    "expiring": "Segera berakhir",
    "expired": "Berakhir",
    "terminated": "Diakhiri",
}
AGREEMENT_SCOPE = {
    "rehabilitation": "Rehabilitasi berkelanjutan",
    "capacity_building": "Penguatan kapasitas",
    "reporting": "Pelaporan",
    "monitoring_evaluation": "Monitoring dan evaluasi",
}
ACTIVITY_KINDS = {
    "training": "Pelatihan",
    "supervision_visit": "Kunjungan supervisi",
    "facilitation": "Fasilitasi",
    "coordination_meeting": "Rapat koordinasi",
}
# dimensions of BNN's rehabilitation capability index, each scored 0-100
SCORE_DIMENSIONS = {
    "availability": "Ketersediaan",
    "access": "Keterjangkauan",
    "acceptability": "Keberterimaan",
    "quality": "Mutu",
    "continuity": "Kesinambungan",
}
CONTACT_ROLES = {
    "head": "Pimpinan",
    "operator": "Operator",
    "clinician": "Tenaga klinis",
    "counsellor": "Konselor",
    "administration": "Administrasi",
    "other": "Lainnya",
}

# --- monthly reports -------------------------------------------------------------------

REPORT_STATUSES = {
    "open": "Belum jatuh tempo",
    "missing": "Belum dikirim (terlambat)",
    "submitted_on_time": "Dikirim tepat waktu",
    "submitted_late": "Dikirim terlambat",
    "returned": "Dikembalikan",
    "approved": "Disetujui",
}
# the counts of a report, in the order of its form
MEASURES = {
    "start": "Awal bulan",
    "admitted": "Masuk",
    "completed": "Selesai",
    "dropped_out": "Putus",
    "transferred_out": "Dipindahkan",
    "end": "Akhir bulan",
}

# what may be attached to what (bersinar.attachments): by the kind of object
ATTACHMENT_KINDS = {
    "referral": {
        "consent_form": "Formulir persetujuan klien",
        "assessment_recommendation": "Rekomendasi tim asesmen terpadu",
        "other": "Lainnya",
    },
    "agreement": {"signed_agreement": "PKS yang ditandatangani", "other": "Lainnya"},
    "report": {"evidence": "Bukti kegiatan", "other": "Lainnya"},
}

# --- monitoring and evaluation (monev) indicators ------------------------------------

# per partner and month (laporan's GET /indicators; the FHIR interface's Measures)
INDICATORS = {
    "reporting_rate": "Tingkat pelaporan",
    "on_time_rate": "Laporan tepat waktu",
    "acceptance_rate": "Tingkat penerimaan rujukan",
    "median_response_hours": "Median waktu jawaban (jam)",
    "completion_rate": "Tingkat penyelesaian layanan",
    "dropout_rate": "Tingkat putus layanan",
    "occupancy": "Keterisian tempat",
    "target_reached": "Capaian target tahunan PKS",
}
INDICATOR_DEFINITIONS = {
    "reporting_rate": "Laporan yang sudah dikirim (tepat waktu, terlambat, dikembalikan atau "
    "disetujui) dibagi laporan yang diharapkan pada periode itu.",
    "on_time_rate": "Laporan yang pertama kali dikirim paling lambat tanggal jatuh tempo "
    "dibagi laporan yang diharapkan.",
    "acceptance_rate": "Rujukan yang diterima dibagi rujukan yang dijawab (diterima + ditolak) "
    "dengan jawaban pada bulan itu.",
    "median_response_hours": "Median jam dari permintaan rujukan sampai jawaban (terima atau "
    "tolak), untuk jawaban pada bulan itu.",
    "completion_rate": "Klien yang selesai dibagi klien yang keluar (selesai + putus + "
    "dipindahkan) pada bulan itu.",
    "dropout_rate": "Klien yang putus dibagi klien yang keluar (selesai + putus + dipindahkan) "
    "pada bulan itu.",
    "occupancy": "Klien dalam perawatan pada akhir bulan dibagi jumlah kapasitas semua "
    "layanan mitra.",
    "target_reached": "Klien yang masuk sejak 1 Januari tahun itu sampai akhir bulan dibagi "
    "target tahunan PKS yang berlaku pada bulan itu.",
}
INDICATOR_DEFINITIONS_EN = {
    "reporting_rate": "Reports sent (on time, late, returned or approved) divided by the "
    "reports expected in the period.",
    "on_time_rate": "Reports first sent on or before their due date divided by the reports "
    "expected.",
    "acceptance_rate": "Referrals accepted divided by referrals answered (accepted + rejected), "
    "for answers given in the month.",
    "median_response_hours": "Median hours from a referral's request to its answer (accept or "
    "reject), for answers given in the month.",
    "completion_rate": "Clients who completed divided by clients who left (completed + dropped "
    "out + transferred) in the month.",
    "dropout_rate": "Clients who dropped out divided by clients who left (completed + dropped "
    "out + transferred) in the month.",
    "occupancy": "Clients in care at the end of the month divided by the capacity of all the "
    "partner's services.",
    "target_reached": "Clients admitted from 1 January of that year to the end of the month "
    "divided by the annual target of the agreement valid in that month.",
}

# --- notifications ----------------------------------------------------------------------

CHANNELS = {
    "inbox": "Kotak masuk",
    "email": "Email",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "webhook": "Webhook",
}
# the channels a person can be told through (a webhook reaches a system)
PERSON_CHANNELS = ("inbox", "email", "sms", "whatsapp")
DELIVERY_STATUSES = {
    "pending": "Menunggu",
    "sent": "Terkirim",
    "failed": "Gagal",
    "cancelled": "Dibatalkan",
    "skipped": "Dilewati (alamat belum ada)",
}


def label(codes: Mapping[str, str], code: str | None, missing: str = "-") -> str:
    """The words for ``code``; an unknown code as it is, none as ``missing``."""
    if code in codes:
        return codes[code]
    return missing if code is None or code == "" else str(code)
