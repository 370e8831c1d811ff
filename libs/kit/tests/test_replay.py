"""`replay`: dead-lettered messages go back to the service's own queue, up to a limit."""

from __future__ import annotations

import uuid

import aio_pika

from veche_kit.bus import dead_letter_queue, queue_name
from veche_kit.replay import replay


async def test_replay_moves_up_to_the_limit_back_to_the_service_queue(amqp_url: str) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(dead_letter_queue("svc", namespace), durable=True)
        live = await channel.declare_queue(queue_name("svc", namespace), durable=True)
        for index in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=f"m{index}".encode(),
                    message_id=f"id{index}",
                    headers={"producer": "p", "x-death": "gone"},
                ),
                routing_key=dead.name,
            )
        assert await replay(amqp_url, "svc", limit=2, namespace=namespace) == 2
        first = await live.get(no_ack=True)
        assert (first.body, first.message_id) == (b"m0", "id0")
        assert first.headers == {"producer": "p"}  # the broker's x- headers are dropped
        assert await replay(amqp_url, "svc", namespace=namespace) == 1
        assert await replay(amqp_url, "svc", namespace=namespace) == 0
        bodies = [(await live.get(no_ack=True)).body for _ in range(2)]
        assert bodies == [b"m1", b"m2"]
        await dead.delete(if_unused=False, if_empty=False)
        await live.delete(if_unused=False, if_empty=False)
