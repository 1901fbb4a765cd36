"""The AsyncAPI document generated from the event contracts: valid AsyncAPI 3.0.0 (by
the specification's own JSON Schema), one channel and message per declared event, and
its payload schemas accept what the producers send and refuse what breaks a contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from bersinar.contracts import asyncapi
from bersinar.contracts.events import CONTRACTS, EVENT_SOURCES, EVENT_TYPES
from gateway import eventdocs
from harness import produced

SCHEMA = Path(produced.__file__).parent / "schemas" / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def asyncapi_validator():
    schema = json.loads(SCHEMA.read_text())
    registry = Registry()
    for part in [schema, *schema["definitions"].values()]:
        if isinstance(part, dict) and "$id" in part:
            registry = registry.with_resource(part["$id"], DRAFT7.create_resource(part))
    return Draft7Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def document():
    return asyncapi.document("1")


def test_the_document_is_valid_asyncapi_3(asyncapi_validator, document):
    errors = [f"{list(e.path)}: {e.message}" for e in asyncapi_validator.iter_errors(document)]
    assert errors == []
    broken = copy.deepcopy(document)
    broken["operations"]["emit_referral_requested"]["action"] = "publish"  # AsyncAPI 2 word
    assert list(asyncapi_validator.iter_errors(broken))


def test_every_declared_event_is_a_channel_with_its_exchange_and_message(document):
    assert set(document["channels"]) == set(EVENT_TYPES)
    for event_type, channel in document["channels"].items():
        exchange = channel["bindings"]["amqp"]["exchange"]
        assert (channel["address"], exchange["name"], exchange["type"]) == (
            event_type,
            f"{EVENT_SOURCES[event_type]}.events",
            "topic",
        )
        operation = document["operations"][f"emit_{event_type}"]
        assert operation["action"] == "send"
        message = document["components"]["messages"][event_type]
        envelope = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert document["components"]["schemas"][envelope]["properties"]["event_type"] == {
            "type": "string",
            "const": event_type,
        }
    assert len(CONTRACTS) == len(EVENT_TYPES)


def message_validator(document, event_type):
    """A validator of one message's payload (the envelope), references resolved within
    the document."""
    resource = DRAFT7.create_resource(document)
    registry = Registry().with_resource("urn:bersinar:asyncapi", resource)
    envelope = document["components"]["messages"][event_type]["payload"]["$ref"]
    return Draft7Validator({"$ref": f"urn:bersinar:asyncapi{envelope}"}, registry=registry)


PRODUCED = {
    "partner_registered": lambda: produced.partner_event("partner_registered"),
    "agreement_signed": lambda: produced.agreement_signed(),
    "referral_rejected": lambda: produced.referral_event(
        "referral_rejected",
        status="rejected",
        rejection_reason="client_unreachable",
        extra={"from_status": "requested"},
    ),
    "referral_transferred": lambda: produced.referral_event(
        "referral_transferred",
        status="transferred",
        extra={
            "from_status": "admitted",
            "to_partner_id": "yayasan-pesona",
            "to_partner_name": "Yayasan Pesona",
        },
    ),
    "report_overdue": lambda: produced.report_event("report_overdue"),
    "notification_failed": lambda: produced.notification_outcome(produced.report_event()),
}


@pytest.mark.parametrize("event_type", sorted(PRODUCED))
def test_the_documented_schema_accepts_what_the_producer_sends(document, event_type):
    event = PRODUCED[event_type]()
    validator = message_validator(document, event_type)
    assert [e.message for e in validator.iter_errors(event)] == []
    wrong = copy.deepcopy(event)
    wrong["data"]["partner_id" if "partner_id" in wrong["data"] else "event_id"] = None
    assert list(validator.iter_errors(wrong))
    extra = copy.deepcopy(event)
    extra["data"]["nik"] = "1771050501900001"  # nothing undeclared, identity least of all
    assert list(validator.iter_errors(extra))


def test_the_events_page_lists_every_event_and_its_fields(document):
    page = eventdocs.render(document)
    for event_type in EVENT_TYPES:
        assert f'id="{event_type}"' in page
    assert "client_unreachable" in page  # the allowed reasons of a rejection
    assert 'href="#ServiceOffer"' in page
