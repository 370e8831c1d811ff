"""Who consumes which events, and declaring their queues before anyone publishes.

A topic exchange drops what no queue is bound to yet. Each service declares
its own queue when it starts, so on a first start an early event (the demo
admin's `user.registered`, say) could be published before a consumer exists.
The stack runner declares every consumer's queue first.
"""

from __future__ import annotations

import asyncio
import importlib.util

from veche_kit.bus import EventBus
from veche_kit.consumer import routes


def consumers() -> dict[str, list[str]]:
    """Which event types each installed service consumes."""
    found: dict[str, list[str]] = {}
    if importlib.util.find_spec("veche_users"):
        from veche_users.consumers import Reactions

        found["users"] = sorted(routes(Reactions))
    if importlib.util.find_spec("veche_polls"):
        from veche_polls.consumers import handlers as polls_handlers
        from veche_polls.settings import PollsSettings

        found["polls"] = sorted(polls_handlers(PollsSettings()))
    if importlib.util.find_spec("veche_issues"):
        from veche_issues.consumers import handlers as issues_handlers

        found["issues"] = sorted(issues_handlers("veche_issues"))
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
