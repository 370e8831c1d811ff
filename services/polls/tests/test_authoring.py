"""Bad input when authoring a poll: BAD_USER_INPUT naming the field; NOT_FOUND, FORBIDDEN."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CLOSE, CREATE, DECIDE, PUBLISH, UPDATE, PollsServer, poll_input

SINGLE: dict[str, Any] = {"text": "Да или нет?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}


def _question(**fields: Any) -> dict[str, Any]:
    return {**SINGLE, **fields}


CASES: list[tuple[dict[str, Any], str]] = [
    ({"title": "   "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 5001}, "description"),
    ({"questions": []}, "questions"),
    ({"questions": [SINGLE] * 21}, "questions"),
    ({"questions": [_question(text=" ")]}, "questions[0].text"),
    ({"questions": [SINGLE, _question(options=["Один"])]}, "questions[1].options"),
    ({"questions": [_question(options=[str(i) for i in range(21)])]}, "questions[0].options"),
    ({"questions": [_question(options=["Да", "да"])]}, "questions[0].options[1]"),
    ({"questions": [_question(options=["Да", ""])]}, "questions[0].options[1]"),
    ({"questions": [_question(maxChoices=2)]}, "questions[0].maxChoices"),
    ({"questions": [_question(kind="MULTIPLE_CHOICE", maxChoices=3)]}, "questions[0].maxChoices"),
    ({"questions": [_question(kind="MULTIPLE_CHOICE", maxChoices=0)]}, "questions[0].maxChoices"),
    ({"questions": [_question(scaleMin=1)]}, "questions[0].scaleMin"),
    (
        {"questions": [{"text": "Оценка?", "kind": "SCALE", "scaleMin": 1}]},
        "questions[0].scaleMax",
    ),
    (
        {"questions": [{"text": "Оценка?", "kind": "SCALE", "scaleMin": 5, "scaleMax": 5}]},
        "questions[0].scaleMax",
    ),
    (
        {"questions": [{"text": "Оценка?", "kind": "SCALE", "scaleMin": 0, "scaleMax": 21}]},
        "questions[0].scaleMax",
    ),
    (
        {"questions": [{**SINGLE, "kind": "SCALE", "scaleMin": 1, "scaleMax": 5}]},
        "questions[0].options",
    ),
    ({"audience": {"minAge": 10}}, "audience.minAge"),
    ({"audience": {"maxAge": 121}}, "audience.maxAge"),
    ({"audience": {"minAge": 40, "maxAge": 30}}, "audience.maxAge"),
    ({"audience": {"districtIds": ["Not a district!"]}}, "audience.districtIds"),
    (
        {"startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"},
        "endsAt",
    ),
    ({"pointsReward": -1}, "pointsReward"),
    ({"pointsReward": 1001}, "pointsReward"),
]


@pytest.mark.parametrize(("fields", "field"), CASES)
async def test_create_poll_names_the_field_at_fault(
    polls: PollsServer, fields: dict[str, Any], field: str
) -> None:
    body = await polls.official().post(CREATE, {"input": poll_input(**fields)})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == field


async def test_malformed_input_is_bad_user_input(polls: PollsServer) -> None:
    missing_kind = poll_input(questions=[{"text": "Без вида?", "options": ["a", "b"]}])
    assert await polls.official().error_code(CREATE, {"input": missing_kind}) == "BAD_USER_INPUT"
    wrong_kind = poll_input(questions=[_question(kind="ESSAY")])
    assert await polls.official().error_code(CREATE, {"input": wrong_kind}) == "BAD_USER_INPUT"
    body = await polls.admin().post(CREATE, {"input": poll_input(departmentId="Roads Dept")})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "departmentId"}


async def test_unknown_polls_and_wrong_callers(polls: PollsServer) -> None:
    official = polls.official()
    for document, variables in (
        (UPDATE, {"id": "missing", "input": {"title": "Новое"}}),
        (PUBLISH, {"id": "missing"}),
        (CLOSE, {"id": "missing"}),
        (DECIDE, {"poll": "missing", "text": "Решили", "status": "TAKEN"}),
    ):
        assert await official.error_code(document, variables) == "NOT_FOUND"
        assert await polls.client.error_code(document, variables) == "UNAUTHENTICATED"
    poll_id = await polls.active_poll(official)
    await official.data(CLOSE, {"id": poll_id})
    assert await polls.citizen().error_code(
        DECIDE, {"poll": poll_id, "text": "Решили", "status": "TAKEN"}
    ) == ("FORBIDDEN")
    body = await official.post(DECIDE, {"poll": poll_id, "text": "  ", "status": "TAKEN"})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "text"}


async def test_update_replaces_questions_and_audience_of_a_draft(polls: PollsServer) -> None:
    official = polls.official()
    poll_id = (await official.data(CREATE, {"input": poll_input()}))["createPoll"]["id"]
    updated = (
        await official.data(
            UPDATE,
            {
                "id": poll_id,
                "input": {
                    "questions": [SINGLE],
                    "audience": {"districtIds": ["Leninsky"], "verifiedOnly": True},
                    "endsAt": "2030-01-01T00:00:00Z",
                },
            },
        )
    )["updatePoll"]
    assert [q["text"] for q in updated["questions"]] == ["Да или нет?"]
    assert updated["audience"] == {
        "districtIds": ["leninsky"],
        "minAge": None,
        "maxAge": None,
        "verifiedOnly": True,
    }
    assert updated["endsAt"] == "2030-01-01T00:00:00+00:00"
    body = await official.post(
        UPDATE, {"id": poll_id, "input": {"startsAt": "2030-02-01T00:00:00Z"}}
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "endsAt"}
    assert await polls.official("housing").error_code(
        UPDATE, {"id": poll_id, "input": {"title": "Чужой"}}
    ) == ("FORBIDDEN")
