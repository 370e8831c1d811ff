"""Voters and open polls for benchmarks that cast votes through a running stack.

A ballot is one voter's answer to one poll; each pair may vote once, so a
benchmark that casts N votes needs N distinct (voter, poll) pairs: `ballots`
makes enough polls for the voters it is given.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from veche_stack.stack import Stack
from veche_stack.testing import GraphQLClient, fresh_code_async

REGISTER = (
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
)
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken }
}"""
CREATE = (
    "mutation($input: CreatePollInput!) "
    "{ createPoll(input: $input) { id questions { id options { id } } } }"
)
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { status } }"
VOTE = "mutation($p: ID!, $a: [AnswerInput!]!) { castVote(pollId: $p, answers: $a) { id } }"
CONSENT_VERSION = "2026-12-01"  # veche_users.settings.DEFAULT_CONSENT_VERSION


@dataclass(frozen=True)
class Ballot:
    poll_id: str
    voter: GraphQLClient
    answers: list[dict[str, Any]]

    @property
    def variables(self) -> dict[str, Any]:
        return {"p": self.poll_id, "a": self.answers}


async def signed_in_admin(stack: Stack, client: GraphQLClient) -> GraphQLClient:
    """The stack's admin, signed in with a current two-factor code."""
    email, password = stack.admin_credentials()
    code = await fresh_code_async(stack.admin_totp_secret(), client.url)
    answer = await client.data(LOGIN, {"e": email, "p": password, "t": code})
    return client.as_user(answer["login"]["accessToken"])


async def registered_voters(client: GraphQLClient, count: int) -> list[GraphQLClient]:
    """`count` new citizens, signed in (the stack must allow that many registrations
    from one client: USERS_REGISTRATIONS_PER_CLIENT)."""
    limit = asyncio.Semaphore(4)

    async def one(i: int) -> GraphQLClient:
        payload = {
            "email": f"b{i}-{uuid.uuid4().hex[:6]}@example.ru",
            "password": "bench voter 1",
            "consentVersion": CONSENT_VERSION,
            "displayName": f"Голос {i}",
        }
        async with limit:
            answer = await client.data(REGISTER, {"input": payload})
        return client.as_user(answer["register"]["accessToken"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def open_poll(admin: GraphQLClient, title: str) -> tuple[str, list[dict[str, Any]]]:
    """A published one-question poll any voter may answer, and an answer to it."""
    poll_input = {
        "title": title,
        "audience": {"verifiedOnly": False},  # the bench voters are unverified
        "questions": [{"text": "?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}],
    }
    poll = (await admin.data(CREATE, {"input": poll_input}))["createPoll"]
    await admin.data(PUBLISH, {"id": poll["id"]})
    question = poll["questions"][0]
    return poll["id"], [{"questionId": question["id"], "optionIds": [question["options"][0]["id"]]}]


async def ballots(admin: GraphQLClient, voters: list[GraphQLClient], total: int) -> list[Ballot]:
    """`total` ballots, every voter's for one poll before the next poll's."""
    made: list[Ballot] = []
    while len(made) < total:
        poll_id, answers = await open_poll(admin, f"Замер {len(made)}")
        made.extend(Ballot(poll_id, voter, answers) for voter in voters)
    return made[:total]
