"""``/docs/events``: the AsyncAPI document of the events (bersinar.contracts.asyncapi),
read by people: drawn on the server from the document itself, no script, no CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _kind(prop: dict[str, Any]) -> str:
    """How a field's schema reads: ``string (date-time)``, ``array of ServiceOffer``."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1]
    types = prop.get("type", "")
    types = [t for t in types if t != "null"] if isinstance(types, list) else [types]
    kind = " | ".join(types)
    if kind == "array":
        return f"array of {_kind(prop.get('items', {}))}"
    if "format" in prop:
        kind += f" ({prop['format']})"
    return kind


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        types = prop.get("type")
        allowed = [value for value in prop.get("enum", []) if value is not None]
        inner = prop.get("items", prop)
        rows.append(
            {
                "name": name,
                "kind": _kind(prop),
                "ref": inner["$ref"].rsplit("/", 1)[1] if "$ref" in inner else None,
                "required": name in required,
                "nullable": isinstance(types, list) and "null" in types,
                "allowed": allowed,
                "pattern": prop.get("pattern"),
            }
        )
    return rows


def render(document: dict[str, Any]) -> str:
    schemas = document["components"]["schemas"]
    events = []
    for name, message in document["components"]["messages"].items():
        envelope = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
        payload = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        channel = document["channels"][name]
        events.append(
            {
                "name": name,
                "summary": message["summary"],
                "source": envelope["properties"]["source"]["const"],
                "exchange": channel["bindings"]["amqp"]["exchange"]["name"],
                "version": envelope["properties"]["schema_version"]["const"],
                "payload": payload,
            }
        )
    shapes = {
        name: _fields(schema)
        for name, schema in schemas.items()
        if "properties" in schema and "data" not in schema["properties"]
    }
    return _templates.get_template("events.html").render(
        info=document["info"],
        asyncapi=document["asyncapi"],
        events=events,
        shapes=shapes,
    )
