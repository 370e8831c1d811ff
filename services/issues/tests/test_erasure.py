"""`user.erased`: the users projection becomes a tombstone that late events cannot
refill; the person's reports and supports stay, counts unchanged."""

from __future__ import annotations

from datetime import timedelta

from veche_kit.clock import utcnow
from veche_kit.events import Envelope, UserErased, UserProfileUpdated, UserRegistered
from veche_stack.testing import eventually, publish

from .conftest import ISSUE, IssuesServer

SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { supportersCount } }"


async def _told(issues: IssuesServer, envelope: Envelope) -> None:
    await publish(issues.settings.amqp_url, issues.settings.namespace, envelope)

    async def applied() -> bool:
        found = await issues.service.db["processed_events"].find_one({"_id": str(envelope.id)})
        return found is not None

    await eventually(applied)


def _profile(user_id: str) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user_id,
        display_name="Бригада",
        district_id="leninsky",
        birth_year=None,
        phone_verified=True,
        skills=["potholes"],
        organization="ООО Дорожник",
    )


async def test_an_erased_user_leaves_their_reports_and_no_projection(
    issues: IssuesServer,
) -> None:
    person = issues.solver()
    registered = UserRegistered(
        user_id=person.id,
        display_name="Бригада",
        district_id="leninsky",
        birth_year=None,
        roles=["CITIZEN", "SOLVER"],
        phone_verified=True,
    )
    await _told(issues, Envelope.wrap(registered, "users"))
    await _told(issues, Envelope.wrap(_profile(person.id), "users"))
    reported = await issues.report(person)
    await issues.citizen().client.data(SUPPORT, {"id": reported["id"]})
    before = (await issues.client.data(ISSUE, {"id": reported["id"]}))["issue"]

    await _told(issues, Envelope.wrap(UserErased(user_id=person.id), "users"))

    users = issues.service.db["users"]
    projected = await users.find_one({"_id": person.id}, {"_id": 0})
    assert projected is not None
    assert set(projected) == {"erased_at"}
    late = Envelope.wrap(_profile(person.id), "users").model_copy(
        update={"occurred_at": utcnow() + timedelta(minutes=1)}
    )
    await _told(issues, late)
    assert set(await users.find_one({"_id": person.id}, {"_id": 0}) or {}) == {"erased_at"}
    after = (await issues.client.data(ISSUE, {"id": reported["id"]}))["issue"]
    assert after["supportersCount"] == before["supportersCount"] == 1
    assert after["history"] == before["history"]
