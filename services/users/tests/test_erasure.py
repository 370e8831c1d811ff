"""Erasure (152-FZ): `deleteMyAccount` and `eraseUser` leave no trace of the person's
name, e-mail or phone in any collection of the users store, and nothing new is
written about them afterwards."""

from __future__ import annotations

import random
import uuid
from typing import Any

from veche_kit.events import Envelope
from veche_users import domain
from veche_users.service import UsersService

from .conftest import LOGIN, PASSWORD, UsersServer

DELETE = "mutation($p: String!) { deleteMyAccount(password: $p) }"
ERASE = "mutation($id: ID!, $r: String!) { eraseUser(userId: $id, reason: $r) }"
USER = "query($id: ID!) { user(id: $id) { id displayName roles } }"
REQUEST_CODE = "mutation($p: String!) { requestPhoneCode(phone: $p) }"
VERIFY = "mutation($c: String!) { verifyPhone(code: $c) { phoneVerified } }"
WITHDRAW = "mutation { withdrawConsent }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"


async def _marked_citizen(users: UsersServer) -> tuple[Any, dict[str, Any], list[str]]:
    """A verified citizen whose name, e-mail and phone each carry a unique marker."""
    marker = uuid.uuid4().hex[:10]
    digits = "".join(random.choices("0123456789", k=7))
    client, auth = await users.citizen(displayName=f"Мария {marker}", tag=marker)
    phone = f"+7910{digits}"
    await client.data(REQUEST_CODE, {"p": phone})
    await client.data(VERIFY, {"c": users.sender.sent[phone]})
    await users.service.credit_points(auth["user"]["id"], 10, "test credit", str(uuid.uuid4()))
    return client, auth, [marker, digits]


async def _traces(service: UsersService, markers: list[str]) -> list[str]:
    """Every collection and document holding one of the markers, as `collection/id`."""
    found = []
    for name in await service.db.list_collection_names():
        async for document in service.db[name].find():
            text = repr(document)
            if any(marker in text for marker in markers):
                found.append(f"{name}/{document.get('_id')}")
    return found


async def test_deleting_my_account_leaves_no_trace(users: UsersServer) -> None:
    client, auth, markers = await _marked_citizen(users)
    user_id = auth["user"]["id"]
    assert await _traces(users.service, markers)  # the scan can see the person before
    assert await client.error_code(DELETE, {"p": "not the password"}) == "UNAUTHENTICATED"

    assert (await client.data(DELETE, {"p": PASSWORD}))["deleteMyAccount"] is True

    assert await _traces(users.service, markers) == []
    consents = await users.service.db["consents"].find({"user_id": user_id}).to_list()
    assert [c["client"] for c in consents] == [None]  # kept as the basis, without the address
    shown = (await users.client.data(USER, {"id": user_id}))["user"]
    assert shown == {"id": user_id, "displayName": domain.ERASED_NAME, "roles": []}
    signed_in = await users.client.post(LOGIN, {"email": auth["email"], "password": PASSWORD})
    assert signed_in["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # A credit or a notification arriving later writes nothing about the person.
    assert await users.service.credit_points(user_id, 5, "late", str(uuid.uuid4())) is False
    assert await users.service.store.add_notifications([_notification(user_id)]) == 0
    erased = await users.service.db["outbox"].find_one(
        {"type": "user.erased", "envelope.data.user_id": user_id}
    )
    assert erased is not None
    assert Envelope.model_validate(erased["envelope"]).event().model_dump() == {"user_id": user_id}


async def test_an_admin_erases_an_account_once_with_a_reason(users: UsersServer) -> None:
    _, auth, markers = await _marked_citizen(users)
    user_id = auth["user"]["id"]
    other, _ = await users.citizen()
    assert await other.error_code(ERASE, {"id": user_id, "r": "просьба"}) == "FORBIDDEN"
    admin = await users.admin()
    assert await admin.error_code(ERASE, {"id": "no-such-user", "r": "x"}) == "NOT_FOUND"
    assert await admin.error_code(ERASE, {"id": user_id, "r": "   "}) == "BAD_USER_INPUT"

    reason = "Письменное заявление № 17"
    assert (await admin.data(ERASE, {"id": user_id, "r": reason}))["eraseUser"] is True
    assert (await admin.data(ERASE, {"id": user_id, "r": reason}))["eraseUser"] is False

    assert await _traces(users.service, markers) == []
    records = await users.service.db["erasures"].find({"user_id": user_id}).to_list()
    assert [(r["reason"], r["by"] != user_id) for r in records] == [(reason, True)]


def _notification(user_id: str) -> dict[str, Any]:
    return {
        "_id": uuid.uuid4().hex,
        "user_id": user_id,
        "kind": "poll.published",
        "text": "Новый опрос",
        "link": "/polls/1",
        "read": False,
        "at": None,
        "source_event": uuid.uuid4().hex,
    }


async def test_withdrawing_consent_erases_the_account(users: UsersServer) -> None:
    client, auth, markers = await _marked_citizen(users)
    user_id = auth["user"]["id"]
    assert await _traces(users.service, markers)

    assert (await client.data(WITHDRAW))["withdrawConsent"] is True

    assert await _traces(users.service, markers) == []
    [consent] = await users.service.db["consents"].find({"user_id": user_id}).to_list()
    assert consent["withdrawn_at"] is not None  # the record of what was agreed, and until when
    assert consent["client"] is None
    [record] = await users.service.db["erasures"].find({"user_id": user_id}).to_list()
    assert (record["by"], record["reason"]) == (user_id, "CONSENT_WITHDRAWN")
    refresh = await users.client.post(REFRESH, {"t": auth["refreshToken"]})
    assert refresh["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    login = await users.client.post(LOGIN, {"email": auth["email"], "password": PASSWORD})
    assert login["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await client.error_code(WITHDRAW) == "UNAUTHENTICATED"  # the old token is stale
