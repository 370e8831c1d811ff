"""The whole stack as `make run` starts it (`python -m veche_stack`): every
process up, a first flow through the one endpoint, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from veche_stack.processes import free_port, port_open
from veche_stack.stack import GATEWAY, SERVICES
from veche_stack.testing import GraphQLClient, eventually

pytestmark = pytest.mark.stack

ADMIN_PASSWORD = "stack-admin-pass-1"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken user { id displayName roles district { name } } }
}"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { roles } } }"


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    output: list[str]

    def url(self, name: str, path: str = "/graphql") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    @property
    def endpoint(self) -> str:
        """The one endpoint clients use: the gateway when installed."""
        return self.url("gateway" if GATEWAY.available else "users")


def _interrupt(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, so the runner stops what it started; SIGKILL only as a last resort."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data = tmp_path_factory.mktemp("stack")
    ports = {s.name: free_port() for s in (*SERVICES, GATEWAY)}
    env = {
        **os.environ,
        "VECHE_DATA_DIR": str(data),
        "VECHE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "VECHE_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}.",
        "ISSUES_SUPPORT_THRESHOLD": "2",  # an initiative reaches review with two supports
        "PYTHONUNBUFFERED": "1",
    }
    for spec in (*SERVICES, GATEWAY):
        env[f"{spec.env_prefix}PORT"] = str(ports[spec.name])
        if spec.mongo_port:
            env[f"{spec.env_prefix}MONGO_PORT"] = str(free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "veche_stack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "press Ctrl-C" in line:
            break
    if not output or "press Ctrl-C" not in output[-1]:
        _interrupt(process)
        logs = "".join(p.read_text()[-2000:] for p in (data / "logs").glob("*.log"))
        pytest.fail("the stack did not start:\n" + "".join(output) + logs)
    running = RunningStack(process, ports, output)
    yield running
    _interrupt(process)  # when the Ctrl-C test did not run: the runner stops its children


@pytest.fixture
async def client(stack: RunningStack) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(stack.endpoint)
    yield client
    await client.aclose()


def test_make_run_prints_where_to_go(stack: RunningStack) -> None:
    text = "".join(stack.output)
    assert f"admin account admin@veche.local / {ADMIN_PASSWORD}" in text
    assert stack.endpoint in text


async def test_every_service_is_healthy(stack: RunningStack) -> None:
    async with httpx.AsyncClient() as http:
        for spec in SERVICES:
            if not spec.available:
                continue
            health = (await http.get(stack.url(spec.name, "/health"))).json()
            assert health["mongo"] == "ok", health
            assert health["broker"] == "connected", health
            assert (await http.get(stack.url(spec.name, "/ready"))).status_code == 200


async def test_register_and_sign_in_through_the_endpoint(
    stack: RunningStack, client: GraphQLClient
) -> None:
    email = f"stack-{uuid.uuid4().hex[:8]}@example.ru"
    payload = {
        "email": email,
        "password": "stack password 1",
        "displayName": "Мария",
        "districtId": "oktyabrsky",
        "birthYear": 1985,
    }
    registered = (await client.data(REGISTER, {"input": payload}))["register"]
    assert registered["user"]["district"] == {"name": "Октябрьский округ"}
    me = await client.as_user(registered["accessToken"]).data("{ me { id email } }")
    assert me["me"] == {"id": registered["user"]["id"], "email": email}
    admin = (await client.data(LOGIN, {"e": "admin@veche.local", "p": ADMIN_PASSWORD}))["login"]
    assert "ADMIN" in admin["user"]["roles"]


PROPOSE = """mutation($input: ProposeInitiativeInput!) { proposeInitiative(input: $input) { id status } }"""
SUPPORT = "mutation($id: ID!) { supportIssue(id: $id) { status supportersCount } }"
INITIATIVE_POLL = """query($id: ID!) {
  issue(id: $id) {
    title status supportThreshold supportersCount reporter { displayName }
    poll {
      title status
      author { displayName }
      sourceInitiative { id title reporter { displayName } }
    }
  }
}"""


@pytest.mark.skipif(
    not all(s.available for s in SERVICES) or not GATEWAY.available,
    reason="needs every service and the gateway",
)
async def test_one_query_joins_all_three_services(
    stack: RunningStack, client: GraphQLClient
) -> None:
    people = []
    for name in ("Автор", "Сосед", "Соседка"):
        payload = {
            "email": f"{uuid.uuid4().hex[:8]}@example.ru",
            "password": "stack password 1",
            "displayName": name,
            "districtId": "leninsky",
        }
        people.append(
            client.as_user(
                (await client.data(REGISTER, {"input": payload}))["register"]["accessToken"]
            )
        )
    author, *neighbours = people
    proposal = {
        "title": "Сквер на месте пустыря",
        "description": "Деревья, лавочки и свет.",
        "category": "yards",
    }
    initiative = (await author.data(PROPOSE, {"input": proposal}))["proposeInitiative"]
    assert initiative["status"] == "COLLECTING"
    for neighbour in neighbours:
        await neighbour.data(SUPPORT, {"id": initiative["id"]})
    admin = client.as_user(
        (await client.data(LOGIN, {"e": "admin@veche.local", "p": ADMIN_PASSWORD}))["login"][
            "accessToken"
        ]
    )

    async def poll_created() -> dict[str, Any]:
        issue: dict[str, Any] = (await admin.data(INITIATIVE_POLL, {"id": initiative["id"]}))[
            "issue"
        ]
        return issue if issue["poll"] else {}

    # issues -> initiative.threshold_reached -> polls drafts a poll; one query reads all three.
    issue = await eventually(poll_created, timeout=30)
    assert (issue["status"], issue["supportersCount"], issue["supportThreshold"]) == (
        "UNDER_REVIEW",
        2,
        2,
    )
    assert issue["reporter"] == {"displayName": "Автор"}
    assert issue["poll"]["status"] == "DRAFT"
    assert issue["poll"]["author"] == {"displayName": "Автор"}
    assert issue["poll"]["sourceInitiative"] == {
        "id": initiative["id"],
        "title": "Сквер на месте пустыря",
        "reporter": {"displayName": "Автор"},
    }


def test_ctrl_c_stops_every_process(stack: RunningStack, tmp_path: Path) -> None:
    stack.process.send_signal(signal.SIGINT)
    stack.process.wait(timeout=60)
    assert stack.process.returncode == 0
    for name, port in stack.ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still listens on {port}"
