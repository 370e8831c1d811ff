"""Stale tokens in a service other than users: once `user.role_changed` (a revoked role)
or `user.tokens_revoked` arrives, the tokens issued before it are refused here, with
UNAUTHENTICATED and `reason: TOKEN_STALE` (refresh), not when they expire."""

from __future__ import annotations

import uuid
from typing import Any

from veche_kit.auth import Principal
from veche_kit.events import Envelope, UserRoleChanged, UserTokensRevoked
from veche_stack.testing import GraphQLClient, eventually, publish

from .conftest import CREATE, PollsServer, handled, poll_input

ME = "{ pollsForMe(first: 1) { totalCount } }"


async def refused_as_stale(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> dict[str, Any] | None:
    """The response when the token is refused as stale, else None (to poll on)."""
    body = await client.post(query, variables)
    errors = body.get("errors") or [{}]
    stale = errors[0].get("extensions") == {"code": "UNAUTHENTICATED", "reason": "TOKEN_STALE"}
    return body if stale else None


async def test_a_revoked_role_is_refused_once_its_event_arrives(
    polls: PollsServer, amqp_url: str
) -> None:
    user_id = f"o-{uuid.uuid4().hex[:10]}"
    official = polls.official(user_id=user_id)
    await official.data(CREATE, {"input": poll_input()})  # the role works
    revoked = Envelope.wrap(
        UserRoleChanged(
            user_id=user_id, role="OFFICIAL", granted=False, roles=["CITIZEN"], department_id=None
        ),
        "users",
    )
    await publish(amqp_url, polls.settings.namespace, revoked)
    await eventually(lambda: handled(polls, revoked))
    body = await eventually(
        lambda: refused_as_stale(official, CREATE, {"input": poll_input()}), timeout=5
    )
    assert body is not None
    assert "refreshToken" in body["errors"][0]["message"]
    assert body["data"] is None
    # A token issued after the change (a refresh) is fine, and says CITIZEN only.
    fresh = polls.as_principal(Principal(user_id=user_id, roles=frozenset({"CITIZEN"})))
    assert (await fresh.post(CREATE, {"input": poll_input()}))["errors"][0]["extensions"][
        "code"
    ] == "FORBIDDEN"
    # Someone else's token is untouched.
    await polls.official().data(CREATE, {"input": poll_input()})


async def test_a_sign_out_makes_the_access_token_stale(polls: PollsServer, amqp_url: str) -> None:
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    citizen = polls.citizen(user_id=user_id)
    await citizen.data(ME)
    logged_out = Envelope.wrap(UserTokensRevoked(user_id=user_id, reason="SIGNED_OUT"), "users")
    await publish(amqp_url, polls.settings.namespace, logged_out)
    await eventually(lambda: handled(polls, logged_out))
    await eventually(lambda: refused_as_stale(citizen, ME, {}), timeout=5)
