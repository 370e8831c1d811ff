"""The broker topology compose loads at boot is the one the code declares, and a
real RabbitMQ node accepts it: the user signs in, every queue is bound."""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika
import pytest

from veche_stack import topology
from veche_stack.broker import PrivateRabbit, rabbitmq_installed
from veche_stack.processes import free_port


def test_committed_definitions_are_current() -> None:
    assert topology.DEFINITIONS.read_text() == topology.render_definitions(), (
        "deploy/rabbitmq/definitions.json is stale: run `.venv/bin/python -m veche_stack.topology --write`"
    )


@pytest.mark.skipif(
    not rabbitmq_installed(), reason="needs rabbitmq-server to start a private node"
)
async def test_a_rabbitmq_node_boots_with_the_definitions(tmp_path: Path) -> None:
    config = tmp_path / "rabbitmq.conf"
    config.write_text(f"load_definitions = {topology.DEFINITIONS}\n")
    node = PrivateRabbit(
        tmp_path / "node",
        free_port(),
        free_port(),
        name=f"defs{uuid.uuid4().hex[:6]}",
        config_file=config,
    )
    node.start()
    try:
        connection = await aio_pika.connect(f"amqp://veche:veche@127.0.0.1:{node.port}/")
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange("veche.events", ensure=True)
            consumers = topology.consumers()
            queues = {
                service: await channel.declare_queue(service, passive=True) for service in consumers
            }
            for service in consumers:
                await channel.declare_queue(f"{service}.dead", passive=True)
            for service, keys in consumers.items():
                for queue in queues.values():
                    await queue.purge()
                # An event published now, before any service runs, waits in its consumers' queues.
                await exchange.publish(aio_pika.Message(body=b"{}"), routing_key=keys[0])
                waiting = await channel.declare_queue(service, passive=True)
                assert waiting.declaration_result.message_count == 1
    finally:
        node.stop()
