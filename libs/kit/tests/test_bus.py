"""`EventBus` on the machine's RabbitMQ: names, publish with confirms, dead-letter depth."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import pytest

from veche_kit.bus import BusUnavailableError, EventBus, dead_letter_queue, queue_name
from veche_kit.events import Envelope, UserTokensRevoked


def test_queue_names_carry_the_namespace() -> None:
    assert queue_name("users") == "users"
    assert queue_name("users", "t1.") == "t1.users"
    assert dead_letter_queue("users", "t1.") == "t1.users.dead"


async def test_publishing_before_connecting_is_unavailable() -> None:
    bus = EventBus("amqp://guest:guest@127.0.0.1:1/", "nobody")
    assert not bus.connected
    assert await bus.dead_letter_depth() is None
    with pytest.raises(BusUnavailableError):
        await bus.publish(Envelope.wrap(UserTokensRevoked(user_id="u", reason="SIGNED_OUT"), "t"))


async def test_a_published_envelope_reaches_the_bound_queue(amqp_url: str) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    bus = EventBus(amqp_url, "listener", namespace=namespace)
    bus.start()
    try:
        await bus.wait_ready(10)
        queue = await bus.declare_service_queue(["user.tokens_revoked"])
        envelope = Envelope.wrap(UserTokensRevoked(user_id="u1", reason="SIGNED_OUT"), "users")
        await bus.publish(envelope)
        message = None
        for _ in range(50):
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.1)
        assert message is not None
        assert Envelope.model_validate(json.loads(message.body)) == envelope
        assert (message.message_id, message.type) == (str(envelope.id), "user.tokens_revoked")
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers == {"producer": "users", "version": 1}
        assert await bus.dead_letter_depth() == 0
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await bus.close()
