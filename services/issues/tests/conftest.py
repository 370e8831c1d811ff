"""The issues service served in-process on a real port, over a real MongoDB-wire
server and the real RabbitMQ; tokens minted for any role and claims."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from veche_issues.app import create_app
from veche_issues.service import IssuesService
from veche_issues.settings import IssuesSettings
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_stack.processes import free_port
from veche_stack.testing import GraphQLClient, TokenMint, serve

# Initiatives of this category need 150 supports (the concurrency test); others need 3.
BIG_CATEGORY = "trees"
BIG_THRESHOLD = 150
SMALL_THRESHOLD = 3
# Initiatives of this category take supports from unverified accounts too.
OPEN_CATEGORY = "public-transport"

REPORT = """
mutation($input: ReportIssueInput!) {
  reportIssue(input: $input) {
    id kind status title category address photos supportersCount supportThreshold overdue dueAt
    location { lat lon } district { id } department { id } reporter { id }
  }
}"""
PROPOSE = """
mutation($input: ProposeInitiativeInput!) {
  proposeInitiative(input: $input) { id kind status supportThreshold supportersCount }
}"""
CHANGE = """
mutation($id: ID!, $status: IssueStatus!, $note: String) {
  changeIssueStatus(id: $id, status: $status, note: $note) {
    id status dueAt overdue solver { id }
    history { from to by { id } note at }
  }
}"""
ISSUE = """
query($id: ID!) {
  issue(id: $id) {
    id kind status supportersCount supportedByMe dueAt overdue solver { id }
    solverOffers { id status solver { id } message }
    history { from to by { id } note }
    comments(first: 50) { totalCount edges { node { id text official author { id } } } }
  }
}"""


@dataclass
class Person:
    """A signed-in user as tests need them: a client and who they are."""

    client: GraphQLClient
    principal: Principal

    @property
    def id(self) -> str:
        return self.principal.user_id


@dataclass
class IssuesServer:
    url: str
    settings: IssuesSettings
    service: IssuesService
    client: GraphQLClient
    mint: TokenMint

    def person(
        self,
        *roles: str,
        district: str | None = "leninsky",
        department: str | None = None,
        user_id: str | None = None,
        verified: bool = True,
    ) -> Person:
        principal = Principal(
            user_id=user_id or f"user-{uuid.uuid4().hex[:12]}",
            roles=frozenset({"CITIZEN", *roles}),
            department_id=department,
            district_id=district,
            phone_verified=verified,
        )
        return Person(self.client.as_user(self.mint.token(principal)), principal)

    def citizen(self, **claims: Any) -> Person:
        return self.person(**claims)

    def official(self, department: str = "roads") -> Person:
        return self.person("OFFICIAL", department=department)

    def moderator(self) -> Person:
        return self.person("MODERATOR")

    def solver(self, district: str = "leninsky") -> Person:
        return self.person("SOLVER", district=district)

    async def skilled(self, person: Person, *skills: str) -> Person:
        """`person` once the users projection knows their solver skills (potholes by default)."""
        await project_solver(self.service.db, person.id, *skills)
        return person

    async def report(self, who: Person, **fields: Any) -> dict[str, Any]:
        payload = {
            "title": "Яма на дороге",
            "description": "Глубокая яма у остановки.",
            "category": "potholes",
            "location": {"lat": 54.5293, "lon": 36.2754},
            "address": "ул. Кирова, 1",
            **fields,
        }
        result: dict[str, Any] = (await who.client.data(REPORT, {"input": payload}))["reportIssue"]
        return result

    async def propose(self, who: Person, **fields: Any) -> dict[str, Any]:
        payload = {
            "title": "Сквер на месте пустыря",
            "description": "Разбить сквер с лавочками.",
            "category": "yards",
            **fields,
        }
        result: dict[str, Any] = (await who.client.data(PROPOSE, {"input": payload}))[
            "proposeInitiative"
        ]
        return result

    async def seed_issue(
        self,
        *,
        status: str,
        kind: str = "PROBLEM",
        reporter: str,
        solver: str | None = None,
        department: str = "roads",
        category: str = "potholes",
        **fields: Any,
    ) -> str:
        """Puts an issue straight into the store in any status (for the workflow matrix)."""
        now = utcnow()
        issue_id = str(uuid.uuid4().hex[:24])
        document: dict[str, Any] = {
            "_id": issue_id,
            "kind": kind,
            "title": "Seeded issue",
            "description": "Seeded for a test.",
            "category": category,
            "department_id": department,
            "address": None,
            "district_id": "leninsky",
            "photos": [],
            "status": status,
            "reporter_id": reporter,
            "solver_id": solver,
            "supporters_count": 0,
            "support_threshold": SMALL_THRESHOLD if kind == "INITIATIVE" else None,
            "due_at": None,
            "history": [],
            "search_terms": [],
            "created_at": now,
            "updated_at": now,
            **fields,
        }
        if status == "RESOLVED":
            document.setdefault("resolved_at", now)
        await self.service.db["issues"].insert_one(document)
        return issue_id


async def project_solver(db: Any, user_id: str, *skills: str) -> None:
    """Writes the users projection as the user.* events leave it for a solver of `skills`
    (potholes when none are named), for tests about other things; test_solvers goes
    through the events themselves."""
    fields = {"roles": ["CITIZEN", "SOLVER"], "skills": list(skills or ("potholes",))}
    await db["users"].update_one({"_id": user_id}, {"$set": fields}, upsert=True)


def issues_settings(
    mongo_url: str, amqp_url: str, data_dir: Path, **overrides: Any
) -> IssuesSettings:
    return IssuesSettings(
        mongo_url=mongo_url,
        mongo_db=f"issues_{uuid.uuid4().hex[:8]}",
        amqp_url=amqp_url,
        namespace=f"test-{uuid.uuid4().hex[:8]}.",
        data_dir=str(data_dir),
        demo_data=True,
        environment="test",
        outbox_poll_seconds=0.2,
        support_threshold=SMALL_THRESHOLD,
        support_thresholds={BIG_CATEGORY: BIG_THRESHOLD},
        verified_supports_by_category={OPEN_CATEGORY: False},
        sweep_seconds=3600,
        uploads_per_user_hour=10,  # the rate-limit test spends it
        # Tests read stats right after changing issues; the brief cache has its own test.
        **{"stats_cache_seconds": 0.0, **overrides},
    )


@pytest.fixture(scope="session")
async def issues(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[IssuesServer]:
    port = free_port()  # known before the app, so photo URLs point at it
    settings = issues_settings(
        mongo_server_url,
        amqp_url,
        tmp_path_factory.mktemp("issues"),
        photo_base_url=f"http://127.0.0.1:{port}",
    )
    mint = TokenMint()
    app = create_app(settings, verifier=mint.verifier())
    async with serve(app, port) as base:
        client = GraphQLClient(f"{base}/graphql")
        await app.state.runtime.consumer.wait_subscribed(15)
        yield IssuesServer(base, settings, app.state.service, client, mint)
        await client.aclose()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)
