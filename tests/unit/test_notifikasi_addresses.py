"""notifikasi's rules for a recipient without an address: what is not planned, and the
admins' notice (Indonesian, naming the recipient, saying what to do)."""

from __future__ import annotations

import pytest

from harness import produced
from services.notifikasi import domain, metrics
from services.notifikasi.channels import PartnerCache, StaffAndPartnerDirectory
from services.notifikasi.handlers import Outcome


def planned_for(event_type, reachable):
    event = produced.sample(event_type, "yayasan-kipas")
    planned = domain.plan(event, {}, [("w1", [event_type])])
    kept, skipped = domain.without_address(planned, reachable)
    return [(p.recipient, p.channel) for p in kept], [(p.recipient, p.channel) for p in skipped]


def test_a_channel_known_to_have_no_address_is_not_planned():
    kept, skipped = planned_for(
        "report_overdue",
        {("partner:yayasan-kipas", "email"): False, ("role:officer", "email"): True},
    )
    assert kept == [
        ("partner:yayasan-kipas", "inbox"),
        ("role:officer", "inbox"),
        ("role:officer", "email"),
        ("webhook:w1", "webhook"),
    ]
    assert skipped == [("partner:yayasan-kipas", "email")]


def test_an_address_not_known_either_way_is_planned():
    """The directory did not answer (None) or was not asked: the worker finds out."""
    kept, skipped = planned_for("report_due_soon", {("partner:yayasan-kipas", "email"): None})
    assert kept == [
        ("partner:yayasan-kipas", "inbox"),
        ("partner:yayasan-kipas", "email"),
        ("webhook:w1", "webhook"),
    ]
    assert skipped == []


def test_the_inbox_and_webhooks_need_no_address():
    reachable = {
        ("partner:yayasan-kipas", "inbox"): False,
        ("webhook:w1", "webhook"): False,
        ("partner:yayasan-kipas", "email"): False,
    }
    kept, skipped = planned_for("report_due_soon", reachable)
    assert kept == [("partner:yayasan-kipas", "inbox"), ("webhook:w1", "webhook")]
    assert skipped == [("partner:yayasan-kipas", "email")]


def test_the_notice_about_a_partner_names_it_and_says_where_to_fill_the_contact_in():
    notice = domain.address_notice("partner:yayasan-kipas", "email", "Yayasan Kipas")
    assert notice.subject == "Alamat email mitra Yayasan Kipas belum diisi"
    assert notice.body.startswith(
        "Notifikasi untuk mitra Yayasan Kipas tidak dikirim lewat email karena alamat email "
        "penerimanya belum ada."
    )
    assert "Mitra & PKS → Yayasan Kipas → Kontak" in notice.body
    assert "PATCH /api/v1/partners/yayasan-kipas dengan kolom contacts" in notice.body
    assert "sekali sehari" in notice.body


@pytest.mark.parametrize(
    ("channel", "title"),
    [
        ("sms", "Nomor telepon mitra Yayasan Pesona belum diisi"),
        ("whatsapp", "Nomor WhatsApp mitra Yayasan Pesona belum diisi"),
    ],
)
def test_the_notice_says_which_address_is_missing(channel, title):
    assert domain.address_notice("partner:yayasan-pesona", channel, "Yayasan Pesona").subject == (
        title
    )


def test_a_partner_mitra_does_not_know_keeps_its_id():
    notice = domain.address_notice("partner:yayasan-hilang", "email")
    assert notice.subject == "Alamat email mitra yayasan-hilang belum diisi"


@pytest.mark.parametrize(
    ("recipient", "channel", "title", "setting"),
    [
        (
            "role:officer",
            "email",
            "Alamat email petugas rehabilitasi BNNP belum diatur",
            "NOTIFIKASI_OFFICER_EMAILS",
        ),
        (
            "role:admin",
            "sms",
            "Nomor telepon administrator Bersinar belum diatur",
            "NOTIFIKASI_ADMIN_PHONES",
        ),
    ],
)
def test_the_notice_about_staff_names_the_setting_to_fill_in(recipient, channel, title, setting):
    notice = domain.address_notice(recipient, channel)
    assert notice.subject == title
    assert f"Isi {setting} (beberapa alamat dipisah koma)" in notice.body
    assert "mulai ulang layanan notifikasi" in notice.body


def test_a_skipped_delivery_is_counted_as_skipped_not_as_a_failure():
    labels = {"channel": "email", "event_type": "report_due_soon"}

    def value(name):
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value(name, labels) or 0.0

    names = (
        "bersinar_notifications_skipped_total",
        "bersinar_notifications_failed_total",
        "bersinar_notifications_given_up_total",
    )
    before = [value(n) for n in names]
    metrics.record(Outcome("d1", "email", "report_due_soon", "skipped", 1, error="NO_ADDRESS"))
    metrics.record_planned([{"result": "skipped", **labels}])
    assert [value(n) - b for n, b in zip(names, before, strict=True)] == [2, 0, 0]


class CountingMitra:
    """mitra's get_partner as notifikasi sees it: the partner with its contacts."""

    def __init__(self, email):
        self.email = email
        self.asked = 0

    def get_partner(self, ident, caller):
        self.asked += 1
        return {"id": ident, "name": "Yayasan Kipas", "contacts": [{"email": self.email}]}


def test_a_partner_is_asked_of_mitra_once_while_its_answer_is_kept():
    """A burst of batches (each with a directory of its own) asks mitra once per partner;
    once the entry expires, mitra is asked again and a changed address is used."""
    now = [100.0]
    cache = PartnerCache(30, clock=lambda: now[0])
    mitra = CountingMitra("lama@kipas.test")
    for _ in range(5):
        directory = StaffAndPartnerDirectory(mitra, {}, shared=cache)
        assert directory.addresses("partner:yayasan-kipas", "email") == ["lama@kipas.test"]
        assert directory.name("partner:yayasan-kipas") == "Yayasan Kipas"
    assert mitra.asked == 1
    mitra.email = "baru@kipas.test"
    now[0] += 29.9
    directory = StaffAndPartnerDirectory(mitra, {}, shared=cache)
    assert directory.addresses("partner:yayasan-kipas", "email") == ["lama@kipas.test"]
    now[0] += 0.1
    directory = StaffAndPartnerDirectory(mitra, {}, shared=cache)
    assert directory.addresses("partner:yayasan-kipas", "email") == ["baru@kipas.test"]
    assert mitra.asked == 2


def test_no_cache_asks_mitra_for_every_directory():
    mitra = CountingMitra("x@kipas.test")
    cache = PartnerCache(0)
    for _ in range(3):
        StaffAndPartnerDirectory(mitra, {}, shared=cache).addresses(
            "partner:yayasan-kipas", "email"
        )
    assert mitra.asked == 3
