"""The polls service served in-process on a real port, over a real MongoDB-wire
server and the real RabbitMQ; tokens minted for any caller, clients per role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractQueue
from starlette.applications import Starlette

from veche_kit.auth import Principal
from veche_kit.events import DistrictsPublished, Envelope, ReferenceItem
from veche_kit.mongo import Database
from veche_kit.reference import DISTRICTS
from veche_kit.runtime import Runtime
from veche_polls.app import create_app
from veche_polls.service import PollsService
from veche_polls.settings import PollsSettings
from veche_stack.testing import (
    GraphQLClient,
    TokenMint,
    bound_queue,
    eventually,
    publish,
    serve,
    take,
)

POLL_FIELDS = """
  id title description status startsAt endsAt pointsReward votesCount createdAt acceptingVotes
  questions { id text kind maxChoices scaleMin scaleMax options { id text } }
  audience { districtIds minAge maxAge verifiedOnly }
  author { id } department { id } sourceInitiative { id }
  decision { text status updatedAt }
  myBallot { id castAt answers { questionId optionIds value } }
"""
RESULTS_FIELDS = """
  results {
    totalVotes
    questions { question { id } options { option { id } votes share } average }
    byDistrict { district { id } totalVotes questions { question { id } options { option { id } votes } average } }
    byAgeGroup { label totalVotes questions { question { id } options { option { id } votes } average } }
  }
"""
CREATE = (
    f"""mutation($input: CreatePollInput!) {{ createPoll(input: $input) {{ {POLL_FIELDS} }} }}"""
)
UPDATE = f"""mutation($id: ID!, $input: UpdatePollInput!) {{ updatePoll(id: $id, input: $input) {{ {POLL_FIELDS} }} }}"""
PUBLISH = """mutation($id: ID!) { publishPoll(id: $id) { id status } }"""
CLOSE = """mutation($id: ID!) { closePoll(id: $id) { id status } }"""
VOTE = """mutation($poll: ID!, $answers: [AnswerInput!]!) {
  castVote(pollId: $poll, answers: $answers) { id castAt poll { id } answers { questionId optionIds value } }
}"""
DECIDE = """mutation($poll: ID!, $text: String!, $status: DecisionStatus!) {
  recordDecision(pollId: $poll, text: $text, status: $status) { id decision { text status updatedAt } }
}"""
POLL = f"""query($id: ID!) {{ poll(id: $id) {{ {POLL_FIELDS} {RESULTS_FIELDS} }} }}"""
RESULTS = f"""query($id: ID!) {{ poll(id: $id) {{ id status votesCount {RESULTS_FIELDS} }} }}"""

CHOICE_QUESTIONS: list[dict[str, Any]] = [
    {"text": "Что построить?", "kind": "SINGLE_CHOICE", "options": ["Парк", "Парковку", "Школу"]},
    {
        "text": "Что ещё важно?",
        "kind": "MULTIPLE_CHOICE",
        "options": ["Свет", "Лавочки", "Урны", "Деревья"],
        "maxChoices": 2,
    },
    {"text": "Насколько это срочно?", "kind": "SCALE", "scaleMin": 1, "scaleMax": 5},
]
ANSWERS: list[dict[str, Any]] = [
    {"questionId": "q1", "optionIds": ["q1-1"]},
    {"questionId": "q2", "optionIds": ["q2-1", "q2-3"]},
    {"questionId": "q3", "value": 4},
]


def poll_input(**overrides: Any) -> dict[str, Any]:
    return {"title": "Сквер на Кирова", "questions": CHOICE_QUESTIONS, **overrides}


@dataclass
class PollsServer:
    url: str
    settings: PollsSettings
    mint: TokenMint
    service: PollsService
    runtime: Runtime
    client: GraphQLClient

    @property
    def db(self) -> Database:
        return self.service.db

    def as_principal(self, principal: Principal) -> GraphQLClient:
        return self.client.as_user(self.mint.token(principal))

    def citizen(
        self,
        district: str | None = "leninsky",
        birth_year: int | None = 1990,
        *,
        verified: bool = True,
        user_id: str | None = None,
    ) -> GraphQLClient:
        return self.as_principal(
            Principal(
                user_id=user_id or f"u-{uuid.uuid4().hex[:12]}",
                roles=frozenset({"CITIZEN"}),
                district_id=district,
                birth_year=birth_year,
                phone_verified=verified,
            )
        )

    def official(self, department: str = "roads", user_id: str | None = None) -> GraphQLClient:
        return self.as_principal(
            Principal(
                user_id=user_id or f"o-{uuid.uuid4().hex[:12]}",
                roles=frozenset({"CITIZEN", "OFFICIAL"}),
                department_id=department,
            )
        )

    def admin(self) -> GraphQLClient:
        return self.as_principal(
            Principal(user_id=f"a-{uuid.uuid4().hex[:12]}", roles=frozenset({"CITIZEN", "ADMIN"}))
        )

    async def tell_districts(self, *extra: str) -> Envelope:
        """The users service's list of districts as it would tell it: the demo city's and
        `extra`, published on the bus; returns once the service has applied it."""
        rows = [ReferenceItem(id=d.id, name=d.name) for d in DISTRICTS]
        rows += [ReferenceItem(id=d, name=d) for d in extra]
        envelope = Envelope.wrap(DistrictsPublished(districts=rows), "users")
        await publish(self.settings.amqp_url, self.settings.namespace, envelope)
        await eventually(lambda: handled(self, envelope), timeout=10, interval=0.02)
        return envelope

    async def active_poll(self, official: GraphQLClient | None = None, **fields: Any) -> str:
        """A published poll of the roads department; returns its id."""
        author = official or self.official()
        poll_id: str = (await author.data(CREATE, {"input": poll_input(**fields)}))["createPoll"][
            "id"
        ]
        await author.data(PUBLISH, {"id": poll_id})
        return poll_id


def polls_settings(
    mongo_url: str, amqp_url: str, data_dir: Path, **overrides: Any
) -> PollsSettings:
    return PollsSettings(
        mongo_url=mongo_url,
        mongo_db=f"polls_{uuid.uuid4().hex[:8]}",
        amqp_url=amqp_url,
        namespace=f"test-{uuid.uuid4().hex[:8]}.",
        data_dir=str(data_dir),
        environment="test",
        **{
            "outbox_poll_seconds": 0.2,
            "close_check_seconds": 0.2,
            "fold_idle_seconds": 0.2,
            **overrides,
        },
    )


@asynccontextmanager
async def running(
    settings: PollsSettings, prepare: Callable[[Starlette], None] | None = None
) -> AsyncIterator[PollsServer]:
    """A polls service with these settings, served on a free port, its consumer bound
    (`prepare` sees the app before it starts, e.g. to leave a background task out)."""
    mint = TokenMint()
    app = create_app(settings, verifier=mint.verifier())
    if prepare is not None:
        prepare(app)
    async with serve(app) as base:
        client = GraphQLClient(f"{base}/graphql")
        runtime = app.state.runtime
        await runtime.consumer.wait_subscribed(15)
        server = PollsServer(base, settings, mint, app.state.service, runtime, client)
        await server.tell_districts()  # audiences name districts from this list
        yield server
        await client.aclose()


@pytest.fixture(scope="session")
async def polls(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PollsServer]:
    settings = polls_settings(mongo_server_url, amqp_url, tmp_path_factory.mktemp("polls"))
    async with running(settings) as server:
        yield server


async def handled(polls: PollsServer, envelope: Envelope) -> bool:
    """Whether the service's consumer has applied the event."""
    return await polls.db["processed_events"].find_one({"_id": str(envelope.id)}) is not None


class Events:
    """Every event taken from a bound queue so far."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[dict[str, Any]] = []

    async def take(self) -> list[dict[str, Any]]:
        self.seen.extend(await take(self.queue))
        return self.seen

    async def about(self, poll_id: str, event_type: str, count: int = 1) -> list[dict[str, Any]]:
        """Waits until `count` events of the type about the poll have arrived; returns them."""

        async def arrived() -> list[dict[str, Any]]:
            found = [
                e
                for e in await self.take()
                if e["type"] == event_type and e["data"].get("poll_id") == poll_id
            ]
            return found if len(found) >= count else []

        found: list[dict[str, Any]] = await eventually(arrived, timeout=20)
        return found


@pytest.fixture
async def events(polls: PollsServer, amqp_url: str) -> AsyncIterator[Events]:
    async with bound_queue(amqp_url, polls.settings.namespace, "poll.*") as queue:
        yield Events(queue)


async def outbox_drained(polls: PollsServer) -> bool:
    return (await polls.runtime.relay.backlog()).pending == 0
