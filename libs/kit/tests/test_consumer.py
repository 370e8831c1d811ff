"""`Handlers`: registration by event class, one decode per event, one handler per type;
`Consumer.wait_subscribed`: ready means bound."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from veche_kit.bus import EventBus
from veche_kit.consumer import Consumer, Handlers
from veche_kit.events import Envelope, Event, UserRoleChanged
from veche_kit.mongo import Session, connect
from veche_stack.testing import eventually

handlers: Handlers[list[Any]] = Handlers()


@handlers.on(UserRoleChanged)
async def on_user_role_changed(
    seen: list[Any], event: UserRoleChanged, envelope: Envelope, session: Session
) -> None:
    seen.append((event, envelope.id))


def envelope_of(event: Event, *, version: int | None = None) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type=event.type,
        version=version or event.version,
        occurred_at=datetime.now(UTC),
        producer="tests",
        data=event.model_dump(mode="json"),
    )


def test_the_registry_names_its_routing_keys() -> None:
    assert handlers.event_types == ["user.role_changed"]


async def test_a_bound_handler_gets_its_dependencies_and_the_typed_event() -> None:
    seen: list[Any] = []
    event = UserRoleChanged(
        user_id="u1", role="OFFICIAL", granted=True, roles=["OFFICIAL"], department_id="roads"
    )
    envelope = envelope_of(event)
    await handlers.bind(seen)["user.role_changed"](envelope, None)  # type: ignore[arg-type]
    assert seen == [(event, envelope.id)]


async def test_an_unknown_version_is_refused_before_the_handler() -> None:
    seen: list[Any] = []
    envelope = envelope_of(
        UserRoleChanged(user_id="u1", role="OFFICIAL", granted=False, roles=[], department_id=None),
        version=99,
    )
    with pytest.raises(KeyError):
        await handlers.bind(seen)["user.role_changed"](envelope, None)  # type: ignore[arg-type]
    assert seen == []


def test_a_second_handler_for_one_event_type_is_refused() -> None:
    with pytest.raises(TypeError, match="two handlers"):
        handlers.on(UserRoleChanged)(on_user_role_changed)


async def test_once_subscribed_the_queue_is_bound_to_every_handled_event(
    mongo_server_url: str, amqp_url: str
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    client = connect(mongo_server_url)
    bus = EventBus(amqp_url, "subscriber", namespace=namespace)
    seen: list[Any] = []
    consumer = Consumer(
        client, client[f"subscriber_{uuid.uuid4().hex[:8]}"], bus, handlers.bind(seen)
    )
    bus.start()
    consumer.start()
    try:
        await consumer.wait_subscribed(15)
        event = UserRoleChanged(
            user_id="u9", role="SOLVER", granted=True, roles=["SOLVER"], department_id=None
        )
        await bus.publish(Envelope.wrap(event, "tests"))  # bound: it cannot be dropped now
        await eventually(lambda: _length(seen))
        assert [e.user_id for e, _ in seen] == ["u9"]
    finally:
        await bus.close()
        await client.close()


async def _length(items: list[Any]) -> int:
    return len(items)
