"""The AsyncAPI 3.0 document of Bersinar's events, generated from their declared
contracts (bersinar.contracts.events): one channel per event type (its routing key on
the emitting service's topic exchange ``<source>.events``), one message per channel whose
payload is the envelope with the event's own ``data`` schema, and the AMQP headers every
message carries. The gateway serves it at ``/asyncapi.json`` and as a page at
``/docs/events``."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from bersinar.contracts.events import CONTRACTS, EventContract
from bersinar.envelope import ENVELOPE_KEYS

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"

ENVELOPE_DESCRIPTION = (
    "Setiap peristiwa adalah objek JSON: amplop ini, dengan kolom peristiwanya di `data`. "
    "Isinya tidak pernah memuat nama, NIK, telepon atau tanggal lahir klien."
)
HEADERS = {
    "type": "object",
    "properties": {
        "nameko.correlation_id": {
            "type": "string",
            "description": "Correlation id pekerjaan yang menyebabkan peristiwa ini.",
        },
        "nameko.call_id_stack": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Asal pesan diterbitkan (baris outbox penerbitnya).",
        },
    },
}


def _payload_schemas(contracts: list[EventContract]) -> dict[str, Any]:
    """JSON Schemas of the payloads, by the names of their marshmallow classes."""
    spec = APISpec("events", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    for contract in contracts:
        name = contract.payload.__name__
        if name not in spec.components.schemas:
            spec.components.schema(name, schema=contract.payload)
    return spec.to_dict()["components"]["schemas"]


def _envelope(contract: EventContract) -> dict[str, Any]:
    return {
        "type": "object",
        "description": ENVELOPE_DESCRIPTION,
        "required": list(ENVELOPE_KEYS),
        "additionalProperties": False,
        "properties": {
            "event_id": {
                "type": "string",
                "format": "uuid",
                "description": "Unik per peristiwa; juga message_id AMQP. Konsumen yang "
                "menerima id yang sama lagi tidak mengubah apa pun.",
            },
            "event_type": {"type": "string", "const": contract.event_type},
            "source": {"type": "string", "const": contract.source},
            "occurred_at": {"type": "string", "format": "date-time"},
            "schema_version": {"type": "integer", "const": contract.version},
            "correlation_id": {"type": "string"},
            "data": {"$ref": f"#/components/schemas/{contract.payload.__name__}"},
        },
    }


def document(version: str, server: str = "localhost:5672") -> dict[str, Any]:
    contracts = list(CONTRACTS.values())  # as declared: by emitter, in lifecycle order
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas = _payload_schemas(contracts)
    for contract in contracts:
        name = contract.event_type
        exchange = f"{contract.source}.events"
        envelope_name = f"{name}.v{contract.version}"
        schemas[envelope_name] = _envelope(contract)
        messages[name] = {
            "name": name,
            "title": name.replace("_", " "),
            "summary": contract.summary,
            "contentType": "application/json",
            "headers": HEADERS,
            "payload": {"$ref": f"#/components/schemas/{envelope_name}"},
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "tags": [{"name": contract.source}],
            "bindings": {"amqp": {"messageType": name, "bindingVersion": AMQP_BINDING_VERSION}},
        }
        channels[name] = {
            "address": name,
            "title": f"{exchange} / {name}",
            "description": f"Routing key `{name}` pada topic exchange `{exchange}`.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": exchange,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
        operations[f"emit_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"{contract.source} menerbitkan {name}: {contract.summary}",
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
            "tags": [{"name": contract.source}],
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
    sources = list(dict.fromkeys(contract.source for contract in contracts))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Peristiwa Bersinar",
            "version": version,
            "tags": [{"name": s, "description": f"Peristiwa dari {s}."} for s in sources],
            "description": (
                "Fakta yang diterbitkan layanan Bersinar di RabbitMQ. Setiap peristiwa "
                "ditulis bersama perubahan yang menyebabkannya (outbox) dan diterbitkan "
                "dengan publisher confirms; setiap konsumen mencatat yang sudah ditanganinya "
                "(inbox), jadi pesan yang terkirim dua kali berakibat sekali. Nama peristiwa "
                "tidak pernah diubah; kolom hanya ditambah."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": server,
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "Broker tempat setiap layanan menerbitkan dan menerima.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    }
