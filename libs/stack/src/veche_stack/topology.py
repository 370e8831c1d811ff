"""Who consumes which events, and declaring their queues before anyone publishes.

A topic exchange drops what no queue is bound to yet. Each service declares
its own queue when it starts, so on a first start an early event (the demo
admin's `user.registered`, say) could be published before a consumer exists.
The stack runner declares every consumer's queue first; for docker compose,
`python -m veche_stack.topology --write` renders the same topology as a
RabbitMQ definitions file the broker loads when it boots.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

from veche_kit.bus import DEAD_LETTER_EXCHANGE, EXCHANGE, EventBus, dead_letter_queue, queue_name
from veche_kit.consumer import Handlers


def consumers() -> dict[str, list[str]]:
    """Which event types each service consumes: the registry in its `consumers` module."""
    from veche_stack.stack import SERVICES  # the stack imports this module

    found: dict[str, list[str]] = {}
    for spec in SERVICES:
        registry: Handlers[Any] = importlib.import_module(f"{spec.module}.consumers").handlers
        found[spec.name] = registry.event_types
    return found


async def declare_queues(
    amqp_url: str, services: list[str], namespace: str = "", timeout: float = 30
) -> None:
    """Declares each service's durable queue, bindings and dead-letter queue, as it would itself."""
    wanted = consumers()
    for service in services:
        if service not in wanted:
            continue
        bus = EventBus(amqp_url, service, namespace=namespace)
        bus.start()
        try:
            await bus.wait_ready(timeout)
            await bus.declare_service_queue(wanted[service])
        finally:
            await bus.close()


def declare_queues_now(amqp_url: str, services: list[str], namespace: str = "") -> None:
    asyncio.run(declare_queues(amqp_url, services, namespace))


def definitions(
    namespace: str = "", user: str = "veche", password: str = "veche"
) -> dict[str, Any]:
    """A RabbitMQ definitions file: the exchanges, every consumer's queues and bindings, a user.

    Loaded at the broker's boot (docker compose), so no event is published before the
    queue that should keep it exists, whatever order the services start in.
    """
    salt = hashlib.sha256(f"{user}:{namespace}".encode()).digest()[:4]  # stable output for the test
    password_hash = base64.b64encode(
        salt + hashlib.sha256(salt + password.encode()).digest()
    ).decode()
    exchange, dead = namespace + EXCHANGE, namespace + DEAD_LETTER_EXCHANGE
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for service, keys in sorted(consumers().items()):
        queue, dead_queue = queue_name(service, namespace), dead_letter_queue(service, namespace)
        queues.append(
            {
                "name": dead_queue,
                "vhost": "/",
                "durable": True,
                "auto_delete": False,
                "arguments": {},
            }
        )
        queues.append(
            {
                "name": queue,
                "vhost": "/",
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-dead-letter-exchange": dead, "x-dead-letter-routing-key": queue},
            }
        )
        bindings.append(
            {
                "source": dead,
                "vhost": "/",
                "destination": dead_queue,
                "destination_type": "queue",
                "routing_key": queue,
                "arguments": {},
            }
        )
        bindings.extend(
            {
                "source": exchange,
                "vhost": "/",
                "destination": queue,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for key in keys
        )
    return {
        "users": [
            {
                "name": user,
                "password_hash": password_hash,
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [
            {"user": user, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "exchanges": [
            {
                "name": exchange,
                "vhost": "/",
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
            {
                "name": dead,
                "vhost": "/",
                "type": "direct",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
        ],
        "queues": queues,
        "bindings": bindings,
    }


DEFINITIONS = Path(__file__).resolve().parents[4] / "deploy" / "rabbitmq" / "definitions.json"


def render_definitions() -> str:
    return json.dumps(definitions(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Writes deploy/rabbitmq/definitions.json for docker compose."
    )
    parser.add_argument("--write", action="store_true", help=f"update {DEFINITIONS}")
    if parser.parse_args().write:
        DEFINITIONS.parent.mkdir(parents=True, exist_ok=True)
        DEFINITIONS.write_text(render_definitions())
        print(f"wrote {DEFINITIONS}")
    else:
        print(render_definitions(), end="")


if __name__ == "__main__":
    main()
