"""The RabbitMQ bus on aio-pika: the topic exchange, publishing, queues.

Publishing uses publisher confirms, so a returned `publish` means the broker
has the event. The connection is robust: it comes back by itself after a
broker outage, re-declaring queues and consumers. The first connection is
retried in the background, so a service starts while the broker is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)

from veche_kit.events import Envelope

log = logging.getLogger(__name__)

EXCHANGE = "veche.events"
# What a dropped or refused link raises while connecting or declaring.
_LINK_ERRORS = (OSError, TimeoutError, RuntimeError, aio_pika.exceptions.AMQPError)
DEAD_LETTER_EXCHANGE = "veche.dead"
MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


def queue_name(service: str, namespace: str = "") -> str:
    """The consuming service's durable queue."""
    return f"{namespace}{service}"


def dead_letter_queue(service: str, namespace: str = "") -> str:
    """Where a service's messages that could not be handled are parked."""
    return f"{namespace}{service}.dead"


class BusUnavailableError(Exception):
    """The broker cannot be reached right now; the caller retries later."""


class EventBus:
    """One connection per service: publishes envelopes and feeds consumers."""

    def __init__(self, url: str, service: str, *, namespace: str = "", prefetch: int = 32) -> None:
        self.url = url
        self.namespace = namespace
        self.exchange_name = namespace + EXCHANGE
        self.dead_exchange_name = namespace + DEAD_LETTER_EXCHANGE
        self.queue_name = queue_name(service, namespace)
        self.dead_queue_name = dead_letter_queue(service, namespace)
        self.service = service
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_ready: list[Callable[[], Coroutine[Any, Any, None]]] = []

    @property
    def connected(self) -> bool:
        # A robust connection stays open while it reconnects; `connected` tells the link's state.
        return self._connection is not None and self._connection.connected.is_set()

    def start(self) -> None:
        """Connects in the background, retrying until the broker answers."""
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.service}-bus")

    async def wait_ready(self, timeout: float | None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    def when_ready(self, setup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Runs `setup` once connected (now, if already connected), retrying until it succeeds."""
        self._on_ready.append(setup)
        if self._ready.is_set():
            asyncio.get_running_loop().create_task(self._until_done(setup))

    async def _until_done(self, setup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # A declaration can fail while the link drops; the robust connection comes back.
        delay = 0.5
        while True:
            try:
                await setup()
                return
            except _LINK_ERRORS as error:
                log.warning(
                    "broker setup failed, retrying", extra={"error": str(error), "retry_in": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect_forever(self) -> None:
        """Connects and sets up the channel and exchange, retrying every step until all succeed."""
        delay = 0.5
        while True:
            connection: AbstractRobustConnection | None = None
            try:
                connection = await aio_pika.connect_robust(
                    self.url,
                    reconnect_interval=1.0,
                    client_properties={"connection_name": self.service},
                )
                channel = await connection.channel(publisher_confirms=True)
                await channel.set_qos(prefetch_count=self.prefetch)
                exchange = await channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                break
            except _LINK_ERRORS as error:
                # Also when the link drops midway through the setup: start over, never half-ready.
                log.warning(
                    "broker not reachable, retrying", extra={"error": str(error), "retry_in": delay}
                )
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._ready.set()
        log.info("connected to the broker")
        for setup in self._on_ready:
            await self._until_done(setup)

    async def publish(self, envelope: Envelope, *, timeout: float = 5.0) -> None:
        """Publishes and waits for the broker's confirm; BusUnavailableError if it cannot."""
        if self._exchange is None or not self.connected:
            raise BusUnavailableError("not connected to the broker")
        message = aio_pika.Message(
            body=envelope.model_dump_json().encode(),
            message_id=str(envelope.id),
            type=envelope.type,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"producer": envelope.producer, "version": envelope.version},
        )
        try:
            await self._exchange.publish(
                message, routing_key=envelope.type, mandatory=False, timeout=timeout
            )
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPError, RuntimeError) as error:
            raise BusUnavailableError(str(error)) from error

    async def declare_service_queue(self, routing_keys: Iterable[str]) -> AbstractRobustQueue:
        """The service's durable queue, bound to its routing keys, dead-lettering to `<service>.dead`."""
        assert self._channel is not None
        assert self._exchange is not None
        dead_exchange = await self._channel.declare_exchange(
            self.dead_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead_queue = await self._channel.declare_queue(self.dead_queue_name, durable=True)
        await dead_queue.bind(dead_exchange, routing_key=self.queue_name)
        queue = await self._channel.declare_queue(
            self.queue_name,
            durable=True,
            arguments={
                "x-dead-letter-exchange": self.dead_exchange_name,
                "x-dead-letter-routing-key": self.queue_name,
            },
        )
        for key in routing_keys:
            await queue.bind(self._exchange, routing_key=key)
        return queue

    async def declare_private_queue(
        self, name: str, routing_keys: Iterable[str]
    ) -> AbstractRobustQueue:
        """A queue of this process alone (`veche_kit.live`): exclusive, deleted with the
        connection, bound to `routing_keys`; the robust channel declares it again after
        a reconnect."""
        assert self._channel is not None
        assert self._exchange is not None
        queue = await self._channel.declare_queue(
            name, durable=False, exclusive=True, auto_delete=True
        )
        for key in routing_keys:
            await queue.bind(self._exchange, routing_key=key)
        return queue

    async def dead_letter_depth(self) -> int | None:
        """Messages parked in this service's dead-letter queue; None when unknown."""
        if self._connection is None or not self.connected:
            return None
        # A passive declare of a missing queue closes its channel: use a throwaway one.
        try:
            async with self._connection.channel() as channel:
                queue = await channel.declare_queue(self.dead_queue_name, passive=True)
                return queue.declaration_result.message_count or 0
        except (aio_pika.exceptions.AMQPError, RuntimeError):
            return None

    async def drop_dead_letters(self, drop: Callable[[bytes], bool]) -> int:
        """Removes the parked messages `drop` picks from this service's dead-letter queue;
        how many. The others go back where they were, in their order: they are held
        unacknowledged while the queue is read, and the channel's close returns them."""
        if self._connection is None or not self.connected:
            raise BusUnavailableError("not connected to the broker")
        dropped = 0
        try:
            async with self._connection.channel() as channel:
                queue = await channel.declare_queue(self.dead_queue_name, durable=True)
                for _ in range(queue.declaration_result.message_count or 0):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    if drop(message.body):
                        await message.ack()
                        dropped += 1
        except (aio_pika.exceptions.AMQPError, RuntimeError, OSError) as error:
            raise BusUnavailableError(str(error)) from error
        return dropped

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
