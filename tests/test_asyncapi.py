"""The committed AsyncAPI document is the one the code generates, and it is whole."""

from __future__ import annotations

from veche_kit.events import Event
from veche_stack import asyncapi


def test_committed_document_is_current() -> None:
    assert asyncapi.DOCUMENT.read_text() == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run `.venv/bin/python -m veche_stack.asyncapi --write`"
    )


def test_every_event_has_a_channel_a_producer_and_resolvable_references() -> None:
    document = asyncapi.build()
    for event_type, _version in Event.registry:
        assert event_type in document["channels"]
        for producer in asyncapi.producers_of(event_type):
            assert f"{producer}.publishes.{event_type}" in document["operations"]
    for operation in document["operations"].values():
        assert operation["channel"]["$ref"].removeprefix("#/channels/") in document["channels"]
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            assert (
                ref["$ref"].removeprefix("#/components/messages/")
                in document["components"]["messages"]
            )
    assert "users.consumes.poll.vote_cast" in document["operations"]
