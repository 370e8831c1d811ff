"""The AsyncAPI 3.0 document of Veche's events, generated from the code.

    python -m veche_stack.asyncapi            # prints it (YAML)
    python -m veche_stack.asyncapi --write    # updates docs/asyncapi.yaml

Channels are the routing keys on the `veche.events` topic exchange; payloads
are the envelope with each event's Pydantic model as `data`; producers come
from the event's name (`poll.*` is published by polls; a `reference.*` list by
the service owning it), consumers from each service's handlers. A test fails
when the committed document is stale.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

import yaml

from veche_kit.bus import DEAD_LETTER_EXCHANGE, EXCHANGE
from veche_kit.events import Envelope, Event
from veche_stack.topology import consumers

DOCUMENT = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.yaml"
PRODUCERS = {
    "user": ("users",),
    "poll": ("polls",),
    "issue": ("issues",),
    "initiative": ("issues",),
    "audit": ("users", "polls", "issues"),  # each service tells its own staff actions
    "content": ("issues", "users"),  # issues keeps the moderation queue, users the display names
    # Reference lists: each told by the service that owns it (veche_kit.reference_lists).
    "reference.districts_published": ("users",),
    "reference.departments_published": ("users",),
    "reference.categories_published": ("issues",),
}


def producers_of(event_type: str) -> tuple[str, ...]:
    """Who publishes `event_type`: named by the whole type, else by its prefix."""
    return PRODUCERS.get(event_type) or PRODUCERS[event_type.split(".", 1)[0]]


def _message_name(model: type[Event]) -> str:
    """`PollPublishedV2`; an older version's class already named so (`PollPublishedV1`,
    the current one keeping the plain name) is not suffixed twice."""
    suffix = f"V{model.version}"
    return f"{model.__name__.removesuffix(suffix)}{suffix}"


def build() -> dict[str, Any]:
    consumed_by: dict[str, list[str]] = {}
    for service, types in consumers().items():
        for event_type in types:
            consumed_by.setdefault(event_type, []).append(service)
    envelope = Envelope.model_json_schema()
    envelope["properties"].pop("data")
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": envelope}
    for (event_type, _version), model in sorted(Event.registry.items()):
        name = _message_name(model)
        schema = model.model_json_schema()
        schemas[name] = schema
        messages[name] = {
            "name": event_type,
            "title": model.__name__,
            "summary": inspect.getdoc(model) or f"{event_type}, version {model.version}",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"producer": {"type": "string"}, "version": {"type": "integer"}},
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "version": {"const": model.version},
                            "data": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
        }
        channel = channels.setdefault(
            event_type,
            {
                "address": event_type,
                "messages": {},
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": EXCHANGE,
                            "type": "topic",
                            "durable": True,
                            "autoDelete": False,
                            "vhost": "/",
                        },
                    }
                },
            },
        )
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        for producer in producers_of(event_type):
            operations[f"{producer}.publishes.{event_type}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{event_type}"},
                "summary": f"{producer} writes it to its outbox with the state change; the relay publishes it.",
            }
        for service in consumed_by.get(event_type, []):
            operations[f"{service}.consumes.{event_type}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{event_type}"},
                "summary": f"{service} applies it once per event id (queue `{service}`, "
                f"dead letters in `{service}.dead` via `{DEAD_LETTER_EXCHANGE}`).",
                "bindings": {"amqp": {"ack": True}},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Veche events",
            "version": "1.0.0",
            "description": "Facts one Veche service tells the others. The envelope's `id` is the "
            "idempotency key; an event's name, version and fields are a contract: change "
            "one by adding a new version. Generated by `python -m veche_stack.asyncapi`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "description": "RabbitMQ; set AMQP_URL to point elsewhere.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    header = "# Generated by `python -m veche_stack.asyncapi --write`; do not edit by hand.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"update {DOCUMENT}")
    if parser.parse_args().write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(render())
        print(f"wrote {DOCUMENT}")
    else:
        print(render(), end="")


if __name__ == "__main__":
    main()
