"""Idempotent event consumers.

A handler's effect and the event id are committed in one transaction (a
unique index on processed event ids), and the message is acked only after
that commit, so a redelivered event is recognised and skipped. Outcomes:
applied or already applied: ack; a domain rejection: log and ack; anything
else: retried with backoff, then rejected into the service's dead-letter
queue (`<service>.dead`), from where `python -m veche_kit.replay` returns it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from veche_kit.bus import EventBus
from veche_kit.clock import utcnow
from veche_kit.errors import DomainError
from veche_kit.events import Envelope, Event, UserErased, about_person
from veche_kit.lanes import Lanes
from veche_kit.mongo import Database, Document, Session, in_transaction

log = logging.getLogger(__name__)

PROCESSED = "processed_events"
Handler = Callable[[Envelope, Session], Awaitable[None]]


D = TypeVar("D")
E = TypeVar("E", bound=Event)
# A typed handler: the service's dependencies, the decoded event, its envelope
# (id, time) and the consumer's transaction.
EventHandler = Callable[[D, E, Envelope, Session], Awaitable[None]]


class Handlers(Generic[D]):
    """A service's handlers, registered by event class; the kit decodes each event once.

    ```
    handlers: Handlers[Store] = Handlers()

    @handlers.on(UserRegistered)
    async def on_user_registered(store, event, envelope, session): ...
    ```

    The registry is a module-level value, so topology and AsyncAPI read what a
    service consumes without building it; `bind(deps)` gives the `Consumer` its routes.

    `lane` names a field of the event's data: events with different values of it
    may be handled side by side (`veche_kit.lanes`), those with the same value in
    order. Only for a handler whose effects touch nothing but that key's documents
    (a voter's points); without a lane an event is handled alone, in order.
    """

    def __init__(self) -> None:
        self._routes: dict[str, tuple[type[Event], EventHandler[D, Any]]] = {}
        self.lanes: dict[str, str] = {}  # routing key -> the data field that is its lane

    def on(
        self, event_class: type[E], *, lane: str | None = None
    ) -> Callable[[EventHandler[D, E]], EventHandler[D, E]]:
        if lane is not None and lane not in event_class.model_fields:
            raise TypeError(f"{event_class.__name__} has no field {lane!r} to be its lane")

        def register(handler: EventHandler[D, E]) -> EventHandler[D, E]:
            if event_class.type in self._routes:
                raise TypeError(f"{event_class.type} has two handlers")
            self._routes[event_class.type] = (event_class, handler)
            if lane is not None:
                self.lanes[event_class.type] = lane
            return handler

        return register

    @property
    def event_types(self) -> list[str]:
        """The routing keys handled, sorted."""
        return sorted(self._routes)

    def bind(self, deps: D) -> dict[str, Handler]:
        """Routing key -> the consumer's handler, each decoding its event once."""
        return {
            key: _decoding(model, handler, deps) for key, (model, handler) in self._routes.items()
        }


def _decoding(model: type[Event], handler: EventHandler[D, Any], deps: D) -> Handler:
    async def handle(envelope: Envelope, session: Session) -> None:
        event = envelope.event()
        if not isinstance(event, model):  # a version this handler was not written for
            raise TypeError(f"{envelope.type} v{envelope.version} is not {model.__name__}")
        await handler(deps, event, envelope, session)

    return handle


class Consumer:
    """Feeds a service's queue to its handlers (see `Handlers`), exactly once in effect."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        bus: EventBus,
        handlers: Mapping[str, Handler],
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        lanes: Mapping[str, str] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.client = client
        self.db = db
        self.bus = bus
        self.handlers = dict(handlers)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        # aio-pika runs the callbacks of prefetched messages concurrently, in delivery
        # order; lanes keep the relay's order wherever it matters (see `Handlers`).
        self.lanes = dict(lanes or {})
        self._lanes = Lanes(concurrency)
        self.subscribed = asyncio.Event()
        self.applied = 0

    def start(self) -> None:
        """Declares the queue and starts consuming once the bus is connected."""
        self.bus.when_ready(self._subscribe)

    async def _subscribe(self) -> None:
        queue = await self.bus.declare_service_queue(self.handlers)
        await queue.consume(self.on_message)
        self.subscribed.set()

    async def wait_subscribed(self, timeout: float) -> None:
        """Until the queue is declared, bound to every handled event type and consumed.

        The one readiness check for tests and probes: an event published before the
        bindings exist reaches no queue (the topic exchange drops it).
        """
        await asyncio.wait_for(self.subscribed.wait(), timeout)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError:
            log.error("unreadable message parked", extra={"message_id": message.message_id})
            await message.reject(requeue=False)
            return
        field = self.lanes.get(envelope.type)
        key = envelope.data.get(field) if field is not None else None
        # A lane is an id (a person's, say) whatever the event type; no id: alone.
        lane = key if isinstance(key, str) else None
        await self._lanes.run(lane, lambda: self._handle(message, envelope))

    async def _handle(self, message: AbstractIncomingMessage, envelope: Envelope) -> None:
        handler = self.handlers.get(envelope.type)
        if handler is None:
            await message.ack()
            return
        context = {"event_id": str(envelope.id), "event_type": envelope.type}
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.apply(envelope, handler)
                if envelope.type == UserErased.type:  # also when applied before: a retry
                    await self._forget_person(str(envelope.data["user_id"]))
            except DomainError as error:
                log.warning(
                    "event rejected by the domain", extra={**context, "error": error.message}
                )
                break
            except Exception:
                log.exception("event handling failed", extra={**context, "attempt": attempt})
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                    continue
                log.error("event parked in the dead-letter queue", extra=context)
                await message.reject(requeue=False)
                return
            else:
                break
        await message.ack()

    async def _forget_person(self, user_id: str) -> None:
        """An erased person's facts leave this service's dead letters too (152-FZ): a
        parked profile event would replay nothing now, but it still names them."""
        dropped = await self.bus.drop_dead_letters(lambda body: about_person(body, user_id))
        if dropped:
            log.info("dead letters about an erased person dropped", extra={"count": dropped})

    async def apply(self, envelope: Envelope, handler: Handler) -> bool:
        """Applies the handler once per event id; False when it was applied before.

        The id's insert comes first in the transaction, so a redelivery fails there
        (the unique `_id`) before the handler runs: no read before it is needed."""
        event_id = str(envelope.id)

        async def work(session: Session) -> None:
            await self.db[PROCESSED].insert_one(
                {"_id": event_id, "type": envelope.type, "at": utcnow()}, session=session
            )
            await handler(envelope, session)

        try:
            await in_transaction(self.client, work)
        except DuplicateKeyError:
            # Another delivery of the same event won the race; its effect stands.
            if await self.db[PROCESSED].find_one({"_id": event_id}, {"_id": 1}) is not None:
                return False
            raise
        self.applied += 1
        log.info("event applied", extra={"event_id": event_id, "event_type": envelope.type})
        return True
