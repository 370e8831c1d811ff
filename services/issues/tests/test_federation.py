"""Through the gateway: the users and issues subgraphs composed, real tokens from the
users service verified over its JWKS, entity references resolved across them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from veche_gateway.app import create_app as create_gateway
from veche_gateway.settings import Settings as GatewaySettings
from veche_issues.app import create_app
from veche_stack.processes import free_port
from veche_stack.testing import GraphQLClient, serve
from veche_users.app import create_app as create_users
from veche_users.settings import UsersSettings

from .conftest import REPORT, issues_settings

REGISTER = """
mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"""
VIEW = """
query($id: ID!) {
  issue(id: $id) {
    title
    reporter { id displayName }
    department { id name }
    district { id name }
  }
  me { displayName reportedIssues { totalCount edges { node { id title category } } } }
  issueCategories { id department { id name } }
}"""


@dataclass
class Stack:
    gateway: GraphQLClient


@pytest.fixture(scope="module")
async def stack(
    mongo_server_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data = tmp_path_factory.mktemp("federation")
    namespace = f"test-{uuid.uuid4().hex[:8]}."
    users_port = free_port()
    users = create_users(
        UsersSettings(
            mongo_url=mongo_server_url,
            mongo_db=f"users_{uuid.uuid4().hex[:8]}",
            amqp_url=amqp_url,
            namespace=namespace,
            data_dir=str(data),
            demo_data=True,
            environment="test",
        )
    )
    settings = issues_settings(
        mongo_server_url,
        amqp_url,
        data,
        jwks_url=f"http://127.0.0.1:{users_port}/.well-known/jwks.json",
    )
    settings = settings.model_copy(update={"namespace": namespace})
    issues = create_app(settings)  # the production verifier: the users service's JWKS
    async with serve(users, port=users_port) as users_url, serve(issues) as issues_url:
        gateway = create_gateway(
            GatewaySettings(
                subgraphs={"users": f"{users_url}/graphql", "issues": f"{issues_url}/graphql"},
                graphiql=False,
                poll_interval_seconds=3600,
            )
        )
        async with serve(gateway) as gateway_url:
            client = GraphQLClient(f"{gateway_url}/graphql")
            yield Stack(client)
            await client.aclose()


LAMP = {
    "title": "Не горит фонарь",
    "description": "Темно во дворе.",
    "category": "street-lighting",
    "location": {"lat": 54.51, "lon": 36.25},
}


async def _register_anna(stack: Stack) -> tuple[GraphQLClient, str]:
    """A new citizen of Oktyabrsky district signed up through the gateway: client and id."""
    registered = await stack.gateway.data(
        REGISTER,
        {
            "input": {
                "email": f"anna-{uuid.uuid4().hex[:8]}@example.ru",
                "password": "correct horse 42",
                "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
                "displayName": "Анна Смирнова",
                "districtId": "oktyabrsky",
            }
        },
    )
    user_id: str = registered["register"]["user"]["id"]
    return stack.gateway.as_user(registered["register"]["accessToken"]), user_id


async def test_issue_references_resolve_in_the_users_subgraph(stack: Stack) -> None:
    me, user_id = await _register_anna(stack)
    issue = (await me.data(REPORT, {"input": LAMP}))["reportIssue"]
    view = await me.data(VIEW, {"id": issue["id"]})
    assert view["issue"] == {
        "title": "Не горит фонарь",
        "reporter": {"id": user_id, "displayName": "Анна Смирнова"},
        "department": {"id": "housing", "name": "Управление ЖКХ"},
        "district": {"id": "oktyabrsky", "name": "Октябрьский округ"},
    }
    assert view["me"] == {
        "displayName": "Анна Смирнова",
        "reportedIssues": {
            "totalCount": 1,
            "edges": [
                {
                    "node": {
                        "id": issue["id"],
                        "title": "Не горит фонарь",
                        "category": "street-lighting",
                    }
                }
            ],
        },
    }
    potholes = next(c for c in view["issueCategories"] if c["id"] == "potholes")
    assert potholes["department"] == {"id": "roads", "name": "Управление дорожного хозяйства"}
