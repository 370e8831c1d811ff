"""Display names under moderation (issue #20): the word filter tells the queue, a
moderator's decision arrives by event and shows a neutral name to others, a new name
replaces a hidden one, and a late decision does not undo a newer fact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from veche_kit.bus import EventBus
from veche_kit.clock import utcnow
from veche_kit.consumer import PROCESSED
from veche_kit.events import ContentHidden, ContentKind, ContentRestored, Envelope, Event
from veche_stack.testing import GraphQLClient, eventually
from veche_users.moderation import HIDDEN_NAME

from .conftest import UsersServer

USER = """query($id: ID!) { user(id: $id) { displayName displayNameHidden } }"""
UPDATE = """mutation($n: String!) { updateProfile(input: {displayName: $n}) { displayName } }"""
INBOX = "{ me { notifications { edges { node { kind text link } } } } }"
RUDE = "Хуесос Петров"


@pytest.fixture(scope="module")
async def publisher(users: UsersServer) -> AsyncIterator[EventBus]:
    bus = EventBus(users.settings.amqp_url, "test-issues", namespace=users.settings.namespace)
    bus.start()
    await bus.wait_ready(10)
    await users.consumer.wait_subscribed(10)
    yield bus
    await bus.close()


async def flags_of(users: UsersServer, user_id: str) -> list[dict[str, Any]]:
    found = await (
        users.service.store.db["outbox"]
        .find({"type": "content.flagged", "envelope.data.content_id": user_id})
        .to_list()
    )
    return [document["envelope"]["data"] for document in found]


async def send(bus: EventBus, event: Event, *, ago: float = 0.0) -> str:
    """Publishes `event` as issues would (`ago` seconds old); its event id."""
    envelope = Envelope.wrap(event, "issues")
    if ago:
        envelope = envelope.model_copy(update={"occurred_at": utcnow() - timedelta(seconds=ago)})
    await bus.publish(envelope)
    return str(envelope.id)


async def name_seen(client: GraphQLClient, user_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await client.data(USER, {"id": user_id}))["user"]
    return found


async def test_the_word_filter_sends_rude_names_to_the_queue(users: UsersServer) -> None:
    rude = await users.register(displayName=RUDE)
    clean = await users.register()
    flags = await flags_of(users, rude["user"]["id"])
    assert [(f["kind"], f["excerpt"], f["word"]) for f in flags] == [
        ("DISPLAY_NAME", RUDE, "Хуесос")
    ]
    assert await flags_of(users, clean["user"]["id"]) == []
    # Flagged, not refused: the account is there under its name until a moderator decides.
    assert rude["user"]["displayName"] == RUDE
    renamed = users.client.as_user(clean["accessToken"])
    await renamed.data(UPDATE, {"n": "Вася-бля"})
    assert [f["word"] for f in await flags_of(users, clean["user"]["id"])] == ["бля"]


async def test_a_hidden_name_is_neutral_for_others_until_restored_or_renamed(
    users: UsersServer, publisher: EventBus
) -> None:
    own_client, auth = await users.citizen(displayName=RUDE)
    user_id = auth["user"]["id"]
    other, _ = await users.citizen()
    moderator = (await users.staff("MODERATOR")).client
    await send(publisher, hidden(user_id))

    async def hidden_for_others() -> bool:
        return bool((await name_seen(other, user_id))["displayName"] == HIDDEN_NAME)

    await eventually(hidden_for_others)
    assert await name_seen(users.client, user_id) == {
        "displayName": HIDDEN_NAME,
        "displayNameHidden": True,
    }
    for viewer in (own_client, moderator):
        assert (await name_seen(viewer, user_id))["displayName"] == RUDE
    notes = (await own_client.data(INBOX))["me"]["notifications"]["edges"]
    assert [n["node"]["kind"] for n in notes] == ["CONTENT_HIDDEN"]
    assert notes[0]["node"]["link"] == f"user:{user_id}"

    await send(publisher, ContentRestored(**restored_fields(user_id)))

    async def shown() -> bool:
        return bool((await name_seen(other, user_id))["displayName"] == RUDE)

    await eventually(shown)
    await _renamed_after_a_hide(users, publisher, own_client, other, user_id)


async def _renamed_after_a_hide(
    users: UsersServer, publisher: EventBus, own: GraphQLClient, other: GraphQLClient, user_id: str
) -> None:
    """Hidden again, then renamed: the new name shows, and a decision older than the
    rename (a late delivery) leaves it shown."""
    await send(publisher, hidden(user_id))

    async def hidden_for_others() -> bool:
        return bool((await name_seen(other, user_id))["displayName"] == HIDDEN_NAME)

    await eventually(hidden_for_others)
    await own.data(UPDATE, {"n": "Иван Петров"})
    late = await send(publisher, hidden(user_id), ago=30)
    await eventually(lambda: _consumed(users, late))
    assert await name_seen(other, user_id) == {
        "displayName": "Иван Петров",
        "displayNameHidden": False,
    }
    # The late decision lost, so its author is not told a name they replaced was hidden.
    notes = (await own.data(INBOX))["me"]["notifications"]["edges"]
    kinds = [n["node"]["kind"] for n in notes]
    assert sorted(kinds) == ["CONTENT_HIDDEN", "CONTENT_HIDDEN", "CONTENT_RESTORED"]


def hidden(user_id: str) -> ContentHidden:
    return ContentHidden(
        kind=ContentKind.DISPLAY_NAME, content_id=user_id, author_id=user_id, reason="Мат в имени"
    )


def restored_fields(user_id: str) -> dict[str, Any]:
    return {
        "kind": ContentKind.DISPLAY_NAME,
        "content_id": user_id,
        "author_id": user_id,
        "reason": f"Пересмотрено {uuid.uuid4().hex[:4]}",
    }


async def _consumed(users: UsersServer, event_id: str) -> bool:
    """The users consumer has applied the event (its id is in the processed list)."""
    found = await users.service.store.db[PROCESSED].find_one({"_id": event_id})
    return found is not None
