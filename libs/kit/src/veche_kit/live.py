"""Live updates: events from the bus fanned out to this instance's subscribers.

```
RabbitMQ "veche.events" ──▶ <service>.live.<uuid>   exclusive, auto-delete: this instance's own
                                  │  LiveFeed: envelope -> topics ("poll:<id>")
                                  ▼
                          LiveHub.touch(topic)        at most one wake per topic per interval
                                  │
                 ┌────────────────┼────────────────┐
                 ▼                ▼                ▼
            Subscriber       Subscriber       Subscriber   one slot each: a wake, coalesced
```

Every instance of a service binds a queue of its own, so each delivers the
events to the subscribers whose sockets it holds; nothing is shared between
instances but the broker. A subscriber holds at most one pending wake (and the
latest value touched with it): a slow one sees the newest state, never a
backlog. A topic is woken at most once per `interval` whatever the event rate,
and always once after the last event, so the last state is never lost.

Each wake is numbered (`Subscriber.wake_number`, the same for every subscriber one
flush woke), and a topic can hold one object its subscribers share (`LiveHub.shared`):
there they read once per wake what they would otherwise each read for themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from aio_pika.abc import AbstractIncomingMessage

from veche_kit.bus import EventBus
from veche_kit.events import Envelope, Event

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")
# What a live feed does with one event: the topics it changes.
TopicsOf = Callable[[Event], Iterable[str]]


class Subscriber(Generic[T]):
    """One subscriber's slot: at most one pending wake, with the latest value touched."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.latest: T | None = None
        self.wake_number = 0  # of the latest wake: equal for all the subscribers it woke
        self._wake = asyncio.Event()
        self._closed = False

    def wake(self, value: T | None, number: int = 0) -> None:
        if value is not None:
            self.latest = value
        self.wake_number = max(self.wake_number, number)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[T | None]:
        return self._wakes()

    async def wait(self) -> bool:
        """Until the next wake (those since the last one coalesced): False when the hub
        closed instead."""
        await self._wake.wait()
        self._wake.clear()
        return not self._closed

    async def _wakes(self) -> AsyncIterator[T | None]:
        """One item per wake (coalesced), until the hub closes."""
        while await self.wait():
            yield self.latest


class LiveHub(Generic[T]):
    """Topics -> subscribers in this process, each topic woken at most once per interval."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self._topics: dict[str, set[Subscriber[T]]] = {}
        self._last: dict[str, float] = {}  # when each topic last woke its subscribers
        self._due: dict[str, asyncio.TimerHandle] = {}
        self._pending: dict[str, T | None] = {}
        self._shared: dict[str, object] = {}  # per topic, while it has subscribers
        self._wakes = 0  # numbers every flush, across topics: later wakes, higher numbers
        self._closed = False

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._topics.values())

    @contextlib.contextmanager
    def subscribe(self, topic: str) -> Iterator[Subscriber[T]]:
        """A subscriber of `topic` for the `with` block; closed at once if the hub is."""
        subscriber: Subscriber[T] = Subscriber(topic)
        if self._closed:
            subscriber.close()
        self._topics.setdefault(topic, set()).add(subscriber)
        try:
            yield subscriber
        finally:
            self._leave(subscriber)

    def _leave(self, subscriber: Subscriber[T]) -> None:
        subscribers = self._topics.get(subscriber.topic)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._topics[subscriber.topic]
            self._last.pop(subscriber.topic, None)
            self._shared.pop(subscriber.topic, None)
            handle = self._due.pop(subscriber.topic, None)
            if handle is not None:
                handle.cancel()

    def shared(self, topic: str, make: Callable[[], S]) -> S:
        """The object the subscribers of `topic` share, made by `make` for the first
        to ask (call it inside their `subscribe` block); dropped with the last one."""
        if topic not in self._shared:
            self._shared[topic] = make()
        return cast(S, self._shared[topic])

    def touch(self, topic: str, value: T | None = None) -> None:
        """`topic` changed: its subscribers wake now, or when its interval has passed
        (touches meanwhile coalesce into that one wake, the latest value kept)."""
        if topic not in self._topics or self._closed:
            return  # no one here listens: nothing to remember
        if value is not None or topic not in self._pending:
            self._pending[topic] = value
        if topic in self._due:
            return
        loop = asyncio.get_running_loop()
        wait = self._last.get(topic, 0.0) + self.interval - time.monotonic()
        self._due[topic] = loop.call_later(max(wait, 0.0), self._flush, topic)

    def _flush(self, topic: str) -> None:
        self._due.pop(topic, None)
        value = self._pending.pop(topic, None)
        self._last[topic] = time.monotonic()
        self._wakes += 1
        for subscriber in list(self._topics.get(topic, ())):
            subscriber.wake(value, self._wakes)

    async def hold(self) -> None:
        """Waits until cancelled (the service stops), then closes the hub."""
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    def close(self) -> None:
        """Ends every subscription (the service is stopping): each stream completes."""
        self._closed = True
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
        for subscribers in self._topics.values():
            for subscriber in subscribers:
                subscriber.close()


class LiveFeed:
    """Feeds a hub from the bus: this instance's own exclusive, auto-delete queue bound
    to the routing keys of `routes`; each event touches the topics its route names,
    with the count of events received so far as the value (a subscriber woken by its
    own re-touch, with no value, sees the count unchanged)."""

    def __init__(self, bus: EventBus, hub: LiveHub[Any], routes: Mapping[str, TopicsOf]) -> None:
        self.bus = bus
        self.hub = hub
        self.routes = dict(routes)
        self.queue_name = f"{bus.queue_name}.live.{uuid.uuid4().hex[:12]}"
        self.received = 0

    def start(self) -> None:
        """Declares and consumes the queue once the bus is connected (retried until it is)."""
        self.bus.when_ready(self._declare)

    async def _declare(self) -> None:
        queue = await self.bus.declare_private_queue(self.queue_name, self.routes)
        await queue.consume(self._on_message, no_ack=True)  # a lost wake costs nothing
        log.info("live feed bound", extra={"queue": self.queue_name, "keys": list(self.routes)})

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.model_validate_json(message.body)
            event = envelope.event()
            topics = list(self.routes[envelope.type](event))
        except (ValueError, KeyError):  # a newer event version, or not one of ours
            log.warning("live feed skipped a message", extra={"type": message.type})
            return
        self.received += 1
        for topic in topics:
            self.hub.touch(topic, self.received)  # the value: how many events so far
