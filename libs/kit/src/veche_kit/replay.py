"""Replays a service's dead-lettered messages after a fix.

    python -m veche_kit.replay users [--amqp-url URL] [--limit N]

Each message parked in `<service>.dead` is put back on the service's own queue
(not the exchange, so no other service sees it twice) and removed from the
dead-letter queue once the broker has confirmed it.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aio_pika

from veche_kit.bus import dead_letter_queue, queue_name
from veche_kit.settings import DEFAULT_AMQP_URL


async def replay(amqp_url: str, service: str, limit: int | None = None, namespace: str = "") -> int:
    """Moves up to `limit` messages from `<service>.dead` back to `<service>`; returns the count."""
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.declare_queue(dead_letter_queue(service, namespace), durable=True)
        while limit is None or moved < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=headers,
                ),
                routing_key=queue_name(service, namespace),
            )
            await message.ack()
            moved += 1
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("service", help="the consuming service, e.g. users")
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--namespace", default=os.environ.get("VECHE_NAMESPACE", ""))
    args = parser.parse_args()
    moved = asyncio.run(replay(args.amqp_url, args.service, args.limit, args.namespace))
    print(f"replayed {moved} message(s) from {dead_letter_queue(args.service)} to {args.service}")


if __name__ == "__main__":
    main()
