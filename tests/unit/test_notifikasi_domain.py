"""Who is told of what, in Bahasa Indonesia, never naming the client."""

from __future__ import annotations

import pytest
from jinja2 import Environment, nodes

from harness import produced
from services.notifikasi.domain import EMAIL_LAYOUT, EMAIL_SUBJECT, TEMPLATES, messages_for

NIK = "1771014503950012"
CLIENT_NAME = "Siti Aminah"
PHONE = "+6281234567890"


def referral_requested(service_type="inpatient", **smuggled) -> dict:
    """A woman referred to Yayasan Pesona, as rujukan announces it; ``smuggled``: fields
    no producer may send, added to see that they are never printed."""
    event = produced.referral_requested(
        partner_id="yayasan-pesona", sex="F", service_type=service_type
    )
    event["data"].update(smuggled)
    return event


def test_referral_requested_goes_to_the_receiving_partner():
    messages = messages_for(referral_requested())
    assert [m.recipient for m in messages] == ["partner:yayasan-pesona"]


def test_referral_requested_text_is_indonesian_and_names_the_referral_and_service():
    event = referral_requested()
    (message,) = messages_for(event)
    text = f"{message.title}\n{message.body}".lower()
    assert event["data"]["referral_id"] in message.body
    assert "rawat inap" in text
    assert "rujukan" in text
    assert "perempuan" in text
    # The service is named in Indonesian, not by its code.
    assert "inpatient" not in text


@pytest.mark.parametrize(
    "service_type,label", [("outpatient", "rawat jalan"), ("aftercare", "pasca rehabilitasi")]
)
def test_other_service_labels(service_type, label):
    (message,) = messages_for(referral_requested(service_type=service_type))
    assert label in message.body


def test_identity_smuggled_into_the_data_is_never_printed():
    event = referral_requested(
        name=CLIENT_NAME,
        nama=CLIENT_NAME,
        nik=NIK,
        phone=PHONE,
        client={"name": CLIENT_NAME, "nik": NIK},
    )
    (message,) = messages_for(event)
    for secret in (CLIENT_NAME, "Siti", NIK, PHONE, event["data"]["client_pseudonym"]):
        assert secret not in message.title
        assert secret not in message.body


IDENTITY_VARIABLES = {
    "name",
    "nama",
    "nik",
    "nik_hmac",
    "phone",
    "telepon",
    "birth_date",
    "client",
    "address",
    "alamat",
}


@pytest.mark.parametrize("event_type", sorted(TEMPLATES))
def test_no_template_refers_to_client_identity(event_type):
    # Read the templates' syntax trees: every variable, attribute and item they look up.
    used = set()
    for source in (*TEMPLATES[event_type].sources(), EMAIL_SUBJECT, EMAIL_LAYOUT):
        tree = Environment().parse(source)
        used |= {node.name for node in tree.find_all(nodes.Name)}
        used |= {node.attr for node in tree.find_all(nodes.Getattr)}
        used |= {
            node.arg.value
            for node in tree.find_all(nodes.Getitem)
            if isinstance(node.arg, nodes.Const)
        }
    assert used, "the walk sees no variable at all"
    assert not used & IDENTITY_VARIABLES, (event_type, used)


@pytest.mark.parametrize("event_type", ["no_such_event", "partner_updated", "notification_sent"])
def test_event_without_a_template_gives_no_message(event_type):
    event = referral_requested()
    event["event_type"] = event_type
    assert messages_for(event) == []
