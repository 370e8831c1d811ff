"""Points ledger, rewards and redemptions: atomic under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from veche_kit.clock import utcnow
from veche_kit.events import AuditRecorded, Envelope
from veche_kit.outbox import OUTBOX

from .conftest import UsersServer

CREATE_REWARD = (
    """mutation($input: RewardInput!) { createReward(input: $input) { id title cost stock } }"""
)
REDEEM = "mutation($id: ID!) { redeemReward(rewardId: $id) { id cost code reward { id title } } }"
BALANCE = """{ me { points redemptions(first: 100) { totalCount edges { node { cost } } }
  pointsHistory(first: 10) { totalCount edges { node { amount reason sourceEvent } } } } }"""
NOTIFICATIONS = """query($unread: Boolean) { me { notifications(unreadOnly: $unread) { totalCount edges { node { id text read link } } } } }"""
MARK = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }"


async def _reward(users: UsersServer, cost: int, stock: int) -> str:
    admin = await users.admin()
    made = await admin.data(
        CREATE_REWARD, {"input": {"title": "Билет", "cost": cost, "stock": stock}}
    )
    return str(made["createReward"]["id"])


async def test_credit_is_applied_once_per_source_event(users: UsersServer) -> None:
    _, auth = await users.citizen()
    user_id = auth["user"]["id"]
    source = str(uuid.uuid4())
    results = await asyncio.gather(
        *[
            users.service.credit_points(user_id, 10, "Voted in a city poll", source)
            for _ in range(10)
        ]
    )
    assert results.count(True) == 1
    user = await users.service.db["users"].find_one({"_id": user_id})
    assert user is not None
    assert user["points"] == 10


async def test_fifty_concurrent_redemptions_with_points_for_three(users: UsersServer) -> None:
    client, auth = await users.citizen()
    user_id = auth["user"]["id"]
    await users.service.credit_points(user_id, 30, "Test credit", str(uuid.uuid4()))
    reward_id = await _reward(users, cost=10, stock=100)
    bodies = await asyncio.gather(*[client.post(REDEEM, {"id": reward_id}) for _ in range(50)])
    outcomes = Counter(
        "ok" if not b.get("errors") else b["errors"][0]["extensions"]["code"] for b in bodies
    )
    assert outcomes == {"ok": 3, "INSUFFICIENT_POINTS": 47}
    me = (await client.data(BALANCE))["me"]
    assert me["points"] == 0
    assert me["redemptions"]["totalCount"] == 3
    assert len(me["redemptions"]["edges"]) == 3
    assert me["pointsHistory"]["totalCount"] == 4
    assert sum(e["node"]["amount"] for e in me["pointsHistory"]["edges"]) == 0
    reward = await users.service.db["rewards"].find_one({"_id": reward_id})
    assert reward is not None
    assert reward["stock"] == 97


async def test_stock_never_goes_below_zero(users: UsersServer) -> None:
    reward_id = await _reward(users, cost=1, stock=2)
    clients = []
    for _ in range(6):
        client, auth = await users.citizen()
        await users.service.credit_points(auth["user"]["id"], 5, "Test credit", str(uuid.uuid4()))
        clients.append(client)
    bodies = await asyncio.gather(*[c.post(REDEEM, {"id": reward_id}) for c in clients])
    outcomes = Counter(
        "ok" if not b.get("errors") else b["errors"][0]["extensions"]["code"] for b in bodies
    )
    assert outcomes == {"ok": 2, "OUT_OF_STOCK": 4}
    reward = await users.service.db["rewards"].find_one({"_id": reward_id})
    assert reward is not None
    assert reward["stock"] == 0


async def test_reward_rules(users: UsersServer) -> None:
    admin = await users.admin()
    bad = {"title": "X", "cost": 0, "stock": 1}
    assert await admin.error_code(CREATE_REWARD, {"input": bad}) == "BAD_USER_INPUT"
    client, _ = await users.citizen()
    assert await client.error_code(CREATE_REWARD, {"input": {**bad, "cost": 5}}) == "FORBIDDEN"
    assert await client.error_code(REDEEM, {"id": "missing"}) == "NOT_FOUND"
    assert await users.client.error_code(REDEEM, {"id": "missing"}) == "UNAUTHENTICATED"


async def test_notifications_inbox_and_mark_read(users: UsersServer) -> None:
    client, auth = await users.citizen()
    user_id = auth["user"]["id"]
    db = users.service.db
    ids = []
    for i in range(3):
        ids.append(f"n{uuid.uuid4().hex[:20]}")
        await db["notifications"].insert_one(
            {
                "_id": ids[-1],
                "user_id": user_id,
                "kind": "test",
                "text": f"Note {i}",
                "link": "issue:1",
                "read": False,
                "source_event": f"event-{i}",
                "at": utcnow(),
            }
        )
    inbox = (await client.data(NOTIFICATIONS, {"unread": True}))["me"]["notifications"]
    assert inbox["totalCount"] == 3
    assert (await client.data(MARK, {"ids": [ids[0]]}))["markNotificationsRead"] == 1
    assert (await client.data(MARK, {"ids": [ids[0]]}))["markNotificationsRead"] == 0
    assert (await client.data(NOTIFICATIONS, {"unread": True}))["me"]["notifications"][
        "totalCount"
    ] == 2
    assert (await client.data(MARK, {}))["markNotificationsRead"] == 2
    other, _ = await users.citizen()
    assert (await other.data(MARK, {"ids": ids}))["markNotificationsRead"] == 0


RENAME_REWARD = "mutation($id: ID!, $t: String!) { renameReward(id: $id, title: $t) { id title } }"
RETIRE_REWARD = "mutation($id: ID!) { retireReward(id: $id) { id title } }"
REWARDS = "{ rewards { id title } }"
REDEEMED = """{ me { redemptions(first: 10) { edges { node { code reward { id title } } } } } }"""


async def _last_audit(users: UsersServer) -> AuditRecorded:
    found = await users.service.db[OUTBOX].find_one(
        {"type": AuditRecorded.type}, sort=[("created_at", -1)]
    )
    assert found is not None
    event = Envelope.model_validate(found["envelope"]).event()
    assert isinstance(event, AuditRecorded)
    return event


async def test_a_renamed_then_retired_reward_leaves_its_redemptions_readable(
    users: UsersServer,
) -> None:
    admin, (client, auth) = await users.admin(), await users.citizen()
    await users.service.credit_points(auth["user"]["id"], 10, "Test credit", str(uuid.uuid4()))
    reward_id = await _reward(users, cost=5, stock=10)
    code = (await client.data(REDEEM, {"id": reward_id}))["redeemReward"]["code"]
    renamed = await admin.data(RENAME_REWARD, {"id": reward_id, "t": "Билет в музей"})
    assert renamed["renameReward"] == {"id": reward_id, "title": "Билет в музей"}
    audit = await _last_audit(users)
    assert (audit.action, audit.before, audit.after) == (
        "REWARD_RENAMED", {"title": "Билет"}, {"title": "Билет в музей"}
    )  # fmt: skip
    assert {"id": reward_id, "title": "Билет в музей"} in (await client.data(REWARDS))["rewards"]
    retired = await admin.data(RETIRE_REWARD, {"id": reward_id})
    assert retired["retireReward"]["id"] == reward_id
    assert (await _last_audit(users)).action == "REWARD_RETIRED"
    assert all(r["id"] != reward_id for r in (await client.data(REWARDS))["rewards"])
    # The redemption keeps its copy of the reward as it was, code included.
    edges = (await client.data(REDEEMED))["me"]["redemptions"]["edges"]
    assert edges[0]["node"] == {"code": code, "reward": {"id": reward_id, "title": "Билет"}}
    assert await client.error_code(REDEEM, {"id": reward_id}) == "NOT_FOUND"
    assert await admin.error_code(RETIRE_REWARD, {"id": reward_id}) == "CONFLICT"
    assert await admin.error_code(RENAME_REWARD, {"id": reward_id, "t": "Х"}) == "CONFLICT"
    assert await admin.error_code(RETIRE_REWARD, {"id": "no-such-reward"}) == "NOT_FOUND"


async def test_only_admins_rename_and_retire_rewards(users: UsersServer) -> None:
    reward_id = await _reward(users, cost=5, stock=1)
    body = await (await users.admin()).post(RENAME_REWARD, {"id": reward_id, "t": "  "})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    citizen, _ = await users.citizen()
    moderator = (await users.staff("MODERATOR")).client
    for person in (citizen, moderator):
        assert await person.error_code(RENAME_REWARD, {"id": reward_id, "t": "Х"}) == "FORBIDDEN"
        assert await person.error_code(RETIRE_REWARD, {"id": reward_id}) == "FORBIDDEN"
    assert await users.client.error_code(RETIRE_REWARD, {"id": reward_id}) == "UNAUTHENTICATED"
    assert any(r["id"] == reward_id for r in (await citizen.data(REWARDS))["rewards"])
