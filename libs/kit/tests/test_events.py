"""`events`: envelopes round-trip, older versions upcast, unknown ones are not guessed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from veche_kit.events import Envelope, Event, IssueOverdue, UserRoleChanged

EXPERIMENT = "test.experiment"


def role() -> UserRoleChanged:
    return UserRoleChanged(
        user_id="u1", role="OFFICIAL", granted=True, roles=["OFFICIAL"], department_id="roads"
    )


def test_an_envelope_round_trips_through_json() -> None:
    envelope = Envelope.wrap(role(), "users")
    decoded = Envelope.model_validate_json(envelope.model_dump_json())
    assert decoded == envelope
    assert (decoded.type, decoded.version, decoded.producer) == ("user.role_changed", 1, "users")
    assert decoded.occurred_at.tzinfo is not None
    assert decoded.event() == role()


def test_each_envelope_has_its_own_id() -> None:
    assert Envelope.wrap(role(), "users").id != Envelope.wrap(role(), "users").id


def test_dates_in_data_are_json_and_come_back_typed() -> None:
    due = "2026-03-01T10:00:00Z"
    event = IssueOverdue.model_validate(
        {"issue_id": "i1", "title": "t", "department_id": None, "due_at": due, "reporter_id": None}
    )
    envelope = Envelope.wrap(event, "issues")
    assert envelope.data["due_at"].startswith("2026-03-01T10:00:00")
    assert envelope.event() == event


def test_unknown_fields_are_ignored_and_events_are_frozen() -> None:
    envelope = Envelope.wrap(role(), "users")
    newer = envelope.model_copy(update={"data": {**envelope.data, "added_later": 1}})
    event = newer.event()
    assert event == role()
    with pytest.raises(ValueError, match="frozen"):
        event.user_id = "u2"  # type: ignore[misc]


@pytest.mark.parametrize("change", [{"version": 99}, {"type": "user.never_was"}])
def test_an_unknown_type_or_version_is_a_key_error(change: dict[str, Any]) -> None:
    with pytest.raises(KeyError):
        Envelope.wrap(role(), "users").model_copy(update=change).event()


def test_a_missing_field_fails_validation() -> None:
    envelope = Envelope.wrap(role(), "users")
    data = {k: v for k, v in envelope.data.items() if k != "roles"}
    with pytest.raises(ValueError, match="roles"):
        envelope.model_copy(update={"data": data}).event()


@pytest.fixture
def experiment() -> Iterator[None]:
    """Three versions of a test-only event, removed from the registry afterwards."""

    class V1(Event):
        type: ClassVar[str] = EXPERIMENT
        name: str

    class V2(Event):
        type: ClassVar[str] = EXPERIMENT
        version: ClassVar[int] = 2
        first: str
        last: str

        @classmethod
        def from_previous(cls, data: dict[str, Any]) -> dict[str, Any]:
            first, _, last = data["name"].partition(" ")
            return {"first": first, "last": last}

    class V3(Event):
        type: ClassVar[str] = EXPERIMENT
        version: ClassVar[int] = 3
        first: str
        last: str
        nickname: str | None

        @classmethod
        def from_previous(cls, data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "nickname": None}

    yield
    for version in (1, 2, 3):
        Event.registry.pop((EXPERIMENT, version), None)


@pytest.mark.usefixtures("experiment")
def test_an_old_version_is_upcast_step_by_step_to_the_latest() -> None:
    assert Event.latest_version(EXPERIMENT) == 3
    old = Envelope(
        id=uuid.uuid4(),
        type=EXPERIMENT,
        version=1,
        occurred_at="2026-01-01T00:00:00Z",
        producer="tests",
        data={"name": "Анна Петрова"},
    )
    event = old.event()
    assert event.version == 3
    assert event.model_dump() == {"first": "Анна", "last": "Петрова", "nickname": None}


@pytest.mark.usefixtures("experiment")
def test_a_type_and_version_is_defined_once() -> None:
    with pytest.raises(TypeError, match="defined twice"):

        class Again(Event):
            type: ClassVar[str] = EXPERIMENT
            name: str
