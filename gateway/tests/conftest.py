"""Test subgraphs (Strawberry Federation v2) and loopback servers for the gateway.

Three small subgraphs mirror Veche's shape:
- users: `User @key(id)` (with an `@inaccessible` field and a field that
  polls takes over with `@override`), `Department @key(city code)` (a compound
  key), the `@shareable` value type `Location`;
- polls: `Poll @key(id)`, extends `User` with `polls`, an `@override`n
  `score` and `ageLabel @requires(birthYear)`, `Poll.creator @provides(name)`,
  a `search` union of `Poll | User`;
- issues: `Issue @key(id)`, extends `Poll` with `issues` (so a query can go
  users -> polls -> issues -> users), a `Post` interface, fields that fail.

As in Veche (api.graphql), a field one subgraph adds to another's entity and a
reference to another subgraph's entity are nullable, so a subgraph that is down
costs only its own fields.

Every server is a real Uvicorn server on a free loopback port inside the test
process. A middleware records each request's headers per subgraph. A test
that needs a subgraph to hang starts one in a process of its own
(`start_subgraph_process`), which it can SIGSTOP and SIGCONT.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import strawberry
import uvicorn
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types import Info

from veche_gateway.app import create_app
from veche_gateway.language import Language, language_var
from veche_gateway.settings import Settings

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

# Mutations from every subgraph append here, so tests can check their order.
MUTATION_LOG: list[str] = []
# subgraph name -> headers of each request it received
SEEN: dict[str, list[dict[str, str]]] = {}
# subgraph name -> JSON body of each POST it received
BODIES: dict[str, list[Any]] = {}

USERS: dict[str, dict[str, Any]] = {
    "u1": {"name": "Anna", "birth_year": 1990, "role": "CITIZEN", "city": "Kaluga"},
    "u2": {"name": "Boris", "birth_year": None, "role": "OFFICIAL", "city": "Obninsk"},
}
DEPARTMENTS: dict[tuple[str, str], str] = {
    ("kaluga", "roads"): "Roads",
    ("kaluga", "light"): "Lighting",
}
POLLS: dict[str, dict[str, Any]] = {
    "p1": {"title": "Park renovation", "author": "u1", "creator": "u2"},
    "p2": {"title": "New bus route", "author": "u2", "creator": "u1"},
}
ISSUES: dict[str, dict[str, Any]] = {
    "i1": {"title": "Pothole", "reporter": "u1", "dept": ("kaluga", "roads"), "poll": "p1"},
    "i2": {"title": "Broken light", "reporter": "u2", "dept": ("kaluga", "light"), "poll": None},
}


# ─────────────────────────────── users ───────────────────────────────


@strawberry.enum(description="What a user may do.")
class Role(enum.Enum):
    CITIZEN = "CITIZEN"
    OFFICIAL = "OFFICIAL"


@strawberry.federation.type(shareable=True, description="Where someone or something is.")
class Location:
    city: str
    street: str | None = None


@strawberry.federation.type(name="User", keys=["id"], description="A resident or an official.")
class UsersUser:
    id: strawberry.ID
    name: str = strawberry.field(description="The name shown to others.")
    birth_year: int | None
    role: Role
    secret: str = strawberry.federation.field(inaccessible=True, default="hidden")
    score: int = 1

    @strawberry.field
    def location(self) -> Location:
        return Location(city=USERS[self.id]["city"])

    @strawberry.field
    def handle(self) -> str:
        return "@" + self.name.lower()

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> UsersUser | None:
        return _users_user(id)


def _users_user(user_id: str) -> UsersUser | None:
    row = USERS.get(user_id)
    if row is None:
        return None
    return UsersUser(
        id=strawberry.ID(user_id),
        name=row["name"],
        birth_year=row["birth_year"],
        role=Role(row["role"]),
    )


@strawberry.federation.type(keys=["city code"], description="A city department.")
class Department:
    city: str
    code: str
    name: str

    @classmethod
    def resolve_reference(cls, city: str, code: str) -> Department:
        return Department(city=city, code=code, name=DEPARTMENTS[(city, code)])


@strawberry.type(name="Query")
class UsersQuery:
    @strawberry.field(description="One user by id.")  # type: ignore[untyped-decorator]
    def user(self, id: strawberry.ID) -> UsersUser | None:
        return _users_user(id)

    @strawberry.field
    def users(self, first: int | None = None) -> list[UsersUser]:
        found = [u for u in (_users_user(i) for i in USERS) if u is not None]
        return found[:first] if first is not None else found

    @strawberry.field
    def me(self, info: Info) -> UsersUser | None:
        auth = info.context["request"].headers.get("authorization", "")
        return _users_user(auth.removeprefix("Bearer "))


@strawberry.type(name="Mutation")
class UsersMutation:
    @strawberry.mutation
    def rename_user(self, id: strawberry.ID, name: str) -> UsersUser:
        MUTATION_LOG.append(f"users:rename:{name}")
        USERS[id]["name"] = name
        user = _users_user(id)
        assert user is not None
        return user


users_schema = strawberry.federation.Schema(
    query=UsersQuery, mutation=UsersMutation, types=[Department]
)


# ─────────────────────────────── polls ───────────────────────────────


@strawberry.enum
class PollStatus(enum.Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"


@strawberry.federation.type(name="User", keys=["id"])
class PollsUser:
    id: strawberry.ID
    name: str = strawberry.federation.field(external=True, default="")
    birth_year: int | None = strawberry.federation.field(external=True, default=None)
    score: int = strawberry.federation.field(override="users", default=100)

    @strawberry.federation.field(requires=["birthYear"])  # type: ignore[untyped-decorator]
    def age_label(self) -> str | None:
        return f"born {self.birth_year}" if self.birth_year else "age unknown"

    @strawberry.field
    def polls(self) -> list[PollsPoll] | None:
        return [_poll(i) for i, row in POLLS.items() if row["author"] == self.id]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **data: Any) -> PollsUser:
        return PollsUser(id=id, birth_year=data.get("birthYear"))


@strawberry.federation.type(name="Poll", keys=["id"])
class PollsPoll:
    id: strawberry.ID
    title: str = strawberry.federation.field(shareable=True)
    status: PollStatus = PollStatus.ACTIVE

    @strawberry.field
    def author(self) -> PollsUser | None:
        return PollsUser(id=strawberry.ID(POLLS[self.id]["author"]))

    @strawberry.federation.field(provides=["name"])  # type: ignore[untyped-decorator]
    def creator(self) -> PollsUser | None:
        # polls keeps a copy of the creator's name; the suffix proves where it came from
        user_id = POLLS[self.id]["creator"]
        return PollsUser(id=strawberry.ID(user_id), name=USERS[user_id]["name"] + " (polls)")

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> PollsPoll:
        return _poll(id)


def _poll(poll_id: str) -> PollsPoll:
    return PollsPoll(id=strawberry.ID(poll_id), title=POLLS[poll_id]["title"])


SearchResult = Annotated[PollsPoll | PollsUser, strawberry.union("SearchResult")]


@strawberry.type(name="Query")
class PollsQuery:
    @strawberry.field
    def poll(self, id: strawberry.ID) -> PollsPoll | None:
        return _poll(id) if id in POLLS else None

    @strawberry.field
    def polls(self, first: int | None = None) -> list[PollsPoll]:
        found = [_poll(i) for i in POLLS]
        return found[:first] if first is not None else found

    @strawberry.field
    def polls_for_me(self, info: Info) -> list[PollsPoll] | None:
        if "authorization" not in info.context["request"].headers:
            raise GraphQLError("Sign in first", extensions={"code": "UNAUTHENTICATED"})
        return [_poll(i) for i in POLLS]

    @strawberry.field
    def search(self, text: str) -> list[SearchResult]:
        found: list[Any] = [_poll(i) for i, p in POLLS.items() if text in p["title"]]
        found += [PollsUser(id=strawberry.ID(i)) for i, u in USERS.items() if text in u["name"]]
        return found


@strawberry.type(name="Mutation")
class PollsMutation:
    @strawberry.mutation
    def create_poll(self, title: str) -> PollsPoll:
        MUTATION_LOG.append(f"polls:create:{title}")
        poll_id = f"p{len(POLLS) + 1}"
        POLLS[poll_id] = {"title": title, "author": "u2", "creator": "u2"}
        return _poll(poll_id)


polls_schema = strawberry.federation.Schema(query=PollsQuery, mutation=PollsMutation)


# ─────────────────────────────── issues ──────────────────────────────


@strawberry.federation.type(name="User", keys=["id"])
class IssuesUser:
    id: strawberry.ID

    @strawberry.field
    def issues(self) -> list[Issue] | None:
        return [_issue(i) for i, row in ISSUES.items() if row["reporter"] == self.id]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> IssuesUser:
        return IssuesUser(id=id)


@strawberry.federation.type(
    name="Department", keys=[Key(fields=FieldSet("city code"), resolvable=False)]
)
class IssuesDepartment:
    city: str
    code: str


@strawberry.federation.type(name="Poll", keys=["id"])
class IssuesPoll:
    id: strawberry.ID
    title: str = strawberry.federation.field(shareable=True)

    @strawberry.field
    def issues(self) -> list[Issue] | None:
        return [_issue(i) for i, row in ISSUES.items() if row["poll"] == self.id]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> IssuesPoll:
        return IssuesPoll(id=id, title=POLLS[id]["title"])


@strawberry.interface(description="Something written on an issue.")
class Post:
    id: strawberry.ID
    text: str


@strawberry.type
class Comment(Post):
    author: IssuesUser | None


@strawberry.type
class Answer(Post):
    official: bool

    @strawberry.field
    def official_by(self) -> IssuesUser | None:
        return IssuesUser(id=strawberry.ID("u1"))


@strawberry.federation.type(keys=["id"])
class Issue:
    id: strawberry.ID
    title: str

    @strawberry.field
    def reporter(self) -> IssuesUser | None:
        return IssuesUser(id=strawberry.ID(ISSUES[self.id]["reporter"]))

    @strawberry.field
    def department(self) -> IssuesDepartment | None:
        city, code = ISSUES[self.id]["dept"]
        return IssuesDepartment(city=city, code=code)

    @strawberry.field
    def poll(self) -> IssuesPoll | None:
        poll_id = ISSUES[self.id]["poll"]
        return IssuesPoll(id=poll_id, title=POLLS[poll_id]["title"]) if poll_id else None

    @strawberry.field
    def location(self) -> Location:
        return Location(city="Kaluga", street="Lenina 1")

    @strawberry.field
    def posts(self) -> list[Post]:
        return [
            Comment(
                id=strawberry.ID("c1"), text="Me too", author=IssuesUser(id=strawberry.ID("u2"))
            ),
            Answer(id=strawberry.ID("a1"), text="Fixing it", official=True),
        ]

    @strawberry.field
    def note(self) -> str | None:
        if self.id == "i2":
            raise GraphQLError("Only officials read notes", extensions={"code": "FORBIDDEN"})
        return "a note"

    @strawberry.field
    def checked_note(self) -> str:
        if self.id == "i2":
            raise GraphQLError("The checked note is missing", extensions={"code": "NOT_FOUND"})
        return "checked"

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Issue:
        return _issue(id)


def _issue(issue_id: str) -> Issue:
    return Issue(id=strawberry.ID(issue_id), title=ISSUES[issue_id]["title"])


@strawberry.type(name="Query")
class IssuesQuery:
    @strawberry.field
    def issue(self, id: strawberry.ID) -> Issue | None:
        return _issue(id) if id in ISSUES else None

    @strawberry.field
    def issues(self, first: int | None = None) -> list[Issue]:
        found = [_issue(i) for i in ISSUES]
        return found[:first] if first is not None else found

    @strawberry.field
    def failing(self) -> str | None:
        raise GraphQLError("The issues store is on fire", extensions={"code": "INTERNAL"})

    @strawberry.field
    async def slow(self) -> str | None:
        await asyncio.sleep(1.0)
        return "late"


@strawberry.type(name="Mutation")
class IssuesMutation:
    @strawberry.mutation
    def report_issue(self, title: str) -> Issue:
        MUTATION_LOG.append(f"issues:report:{title}")
        issue_id = f"i{len(ISSUES) + 1}"
        ISSUES[issue_id] = {
            "title": title,
            "reporter": "u1",
            "dept": ("kaluga", "roads"),
            "poll": None,
        }
        return _issue(issue_id)


issues_schema = strawberry.federation.Schema(
    query=IssuesQuery, mutation=IssuesMutation, types=[Comment, Answer]
)

SCHEMAS = {"users": users_schema, "polls": polls_schema, "issues": issues_schema}


# ───────────────────── extras: a subgraph whose schema changes ─────────────────────


@strawberry.type(name="Query")
class ExtrasQueryV1:
    @strawberry.field
    def hello(self) -> str:
        return "hello"

    @strawberry.field
    async def wait(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "waited"


@strawberry.federation.type(name="User", keys=["id"])
class ExtrasUser:
    id: strawberry.ID

    @strawberry.field
    def badge(self) -> str:
        return f"badge of {self.id}"

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> ExtrasUser:
        return ExtrasUser(id=id)


@strawberry.type(name="Query")
class ExtrasQueryV2(ExtrasQueryV1):
    @strawberry.field
    def goodbye(self) -> str:
        return "goodbye"


@strawberry.federation.type(name="User", keys=["id"])
class ClashingUser:
    id: strawberry.ID
    name: str  # not @shareable, and users owns it: must not compose

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> ClashingUser:
        return ClashingUser(id=id, name="clash")


@strawberry.type(name="Query")
class ExtrasQueryBroken(ExtrasQueryV1):
    @strawberry.field
    def someone(self) -> ClashingUser:
        return ClashingUser(id=strawberry.ID("u1"), name="clash")


EXTRAS = {
    "v1": strawberry.federation.Schema(query=ExtrasQueryV1),
    "v2": strawberry.federation.Schema(query=ExtrasQueryV2, types=[ExtrasUser]),
    "broken": strawberry.federation.Schema(query=ExtrasQueryBroken),
}


# ─────────────────────────────── servers ─────────────────────────────


def subgraph_app(name: str, schema: strawberry.federation.Schema) -> ASGIApp:
    """A Strawberry ASGI app at /graphql that records the headers it receives."""
    graphql_app = GraphQL(schema, graphql_ide=None)
    app = Starlette(routes=[Route("/graphql", graphql_app, methods=["GET", "POST"])])

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        SEEN.setdefault(name, []).append(headers)
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and any(chunks):
                    BODIES.setdefault(name, []).append(json.loads(b"".join(chunks)))
            return message

        await app(scope, recording_receive, send)

    return recording


async def failing_app(scope: Any, receive: Any, send: Any) -> None:
    """A subgraph in trouble: every request gets a 500 with an HTML body."""
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"<h1>Internal Server Error</h1>"})


class Switchable:
    """An ASGI app whose target can be replaced while it serves (schema changes)."""

    def __init__(self, target: ASGIApp) -> None:
        self.target = target

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def serve(app: Any, port: int | None = None) -> Served:
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    return Served(server, task, port)


def gateway_settings(subgraphs: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "subgraphs": subgraphs,
        "poll_interval_seconds": 0,
        # generous: the machine is shared; the timeout test starts its own gateway
        "fetch_timeout_seconds": 5.0,
        "sdl_timeout_seconds": 5.0,
        "admin_secret": "s3cret",
        "max_depth": 8,
        "max_aliases": 10,
        "max_fields": 60,
        "max_cost": 5000,
        "default_list_size": 10,
        "cors_origins": ["https://app.example"],
    }
    values.update(overrides)
    return Settings(**values)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - the condition is remote (HTTP)
            await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """A gateway executed in the test process words its own errors in English, as the
    asserts are written (over HTTP each request's Accept-Language decides)."""
    token = language_var.set(Language.EN)
    yield
    language_var.reset(token)


@pytest.fixture(scope="session")
async def subgraphs() -> AsyncIterator[dict[str, Served]]:
    served = {name: await serve(subgraph_app(name, s)) for name, s in SCHEMAS.items()}
    yield served
    for s in served.values():
        await s.stop()


@pytest.fixture(scope="session")
def subgraph_urls(subgraphs: dict[str, Served]) -> dict[str, str]:
    return {name: f"{s.url}/graphql" for name, s in subgraphs.items()}


@pytest.fixture(scope="session")
def subgraph_sdls() -> dict[str, str]:
    sdls = {}
    for name, schema in SCHEMAS.items():
        result = schema.execute_sync("{ _service { sdl } }")
        assert result.data is not None
        sdls[name] = result.data["_service"]["sdl"]
    return sdls


@pytest.fixture(scope="session")
async def gateway(subgraph_urls: dict[str, str]) -> AsyncIterator[Served]:
    served = await serve(create_app(gateway_settings(subgraph_urls)))
    yield served
    await served.stop()


@pytest.fixture(scope="session")
async def client(gateway: Served) -> AsyncIterator[httpx.AsyncClient]:
    # English, as the asserts are written (a client that asks for nothing reads Russian).
    async with httpx.AsyncClient(
        base_url=gateway.url, timeout=10, headers={"Accept-Language": "en"}
    ) as http:
        yield http


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        if operation_name is not None:
            payload["operationName"] = operation_name
        response = await self.http.post("/graphql", json=payload, headers=headers or {})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="session")
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start extra gateways for one test (settings as in `gateway_settings`)."""
    started: list[Served] = []

    async def start(subgraph_urls: dict[str, str], **overrides: Any) -> Served:
        served = await serve(create_app(gateway_settings(subgraph_urls, **overrides)))
        started.append(served)
        return served

    yield start
    for served in started:
        await served.stop()


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable[[Any], Awaitable[Served]]]:
    """Serve any ASGI app on a loopback port for one test."""
    started: list[Served] = []

    async def start(app: Any) -> Served:
        served = await serve(app)
        started.append(served)
        return served

    yield start
    for served in started:
        await served.stop()


@pytest.fixture
async def start_subgraph() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start extra subgraph servers for one test: `await start(name, schema_key, port)`.

    `schema_key` names one of SCHEMAS or EXTRAS; `served.extra["use"](key)` swaps
    the schema the running server answers with.
    """
    started: list[Served] = []
    every = {**SCHEMAS, **EXTRAS}

    async def start(name: str, schema_key: str, port: int | None = None) -> Served:
        switch = Switchable(subgraph_app(name, every[schema_key]))
        served = await serve(switch, port)

        def use(key: str) -> None:
            switch.target = failing_app if key == "http500" else subgraph_app(name, every[key])

        served.extra["use"] = use
        started.append(served)
        return served

    yield start
    for served in started:
        if not served.task.done():
            await served.stop()


# Serves one of SCHEMAS or EXTRAS from this very file, in a process of its own.
_SERVE_IN_A_PROCESS = """
import importlib.util, sys
import uvicorn
path, name, key, port = sys.argv[1:]
spec = importlib.util.spec_from_file_location("gateway_test_subgraphs", path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module  # dataclasses look their module up there
spec.loader.exec_module(module)
app = module.subgraph_app(name, {**module.SCHEMAS, **module.EXTRAS}[key])
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
"""


@dataclass
class SubgraphProcess:
    """A test subgraph in its own process: `pause()` hangs it (SIGSTOP) as a whole."""

    process: asyncio.subprocess.Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        self.resume()  # a stopped process does not act on SIGTERM
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def start_subgraph_process() -> AsyncIterator[Callable[..., Awaitable[SubgraphProcess]]]:
    """`await start(name, schema_key)`: a subgraph process, answering once it returns."""
    started: list[SubgraphProcess] = []

    async def start(name: str, schema_key: str) -> SubgraphProcess:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SERVE_IN_A_PROCESS, __file__, name, schema_key, str(port)
        )
        served = SubgraphProcess(process, port)
        started.append(served)

        async def answers() -> bool:
            if process.returncode is not None:
                pytest.fail(f"the {name} subgraph process exited with {process.returncode}")
            try:
                async with httpx.AsyncClient(timeout=1) as http:
                    response = await http.post(
                        f"{served.url}/graphql", json={"query": "{ __typename }"}
                    )
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        await wait_until(answers, timeout=30)  # a cold interpreter imports Strawberry first
        return served

    yield start
    for served in started:
        await served.stop()


@pytest.fixture(scope="session")
def extras() -> dict[str, Any]:
    return EXTRAS


@pytest.fixture(scope="session")
def port_factory() -> Callable[[], int]:
    return free_port


@pytest.fixture(scope="session")
def until() -> Callable[..., Awaitable[None]]:
    return wait_until


@pytest.fixture
def mutation_log() -> list[str]:
    MUTATION_LOG.clear()
    return MUTATION_LOG


@pytest.fixture
def seen_headers() -> dict[str, list[dict[str, str]]]:
    SEEN.clear()
    return SEEN


@pytest.fixture
def seen_bodies() -> dict[str, list[Any]]:
    BODIES.clear()
    return BODIES


# ─────────────────────── Apollo's composition, Veche's services ───────────────────────

APOLLO = Path(__file__).parent / "apollo"
VECHE_SERVICES = {"users": "veche_users", "polls": "veche_polls", "issues": "veche_issues"}


@pytest.fixture(scope="session")
def apollo_composition() -> Path:
    """The composing script (`apollo/compose.mjs`), its npm dependencies installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20+ and npm are needed to run Apollo's composition")
    if not (APOLLO / "node_modules" / ".package-lock.json").is_file():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=APOLLO, check=True
        )
    return APOLLO / "compose.mjs"


@pytest.fixture(scope="session")
def service_sdl() -> Callable[[str], str]:
    """A real Veche service's SDL (`users`, `polls`, `issues`) from its Strawberry schema,
    as `_service { sdl }` gives it; the test is skipped when the service is not installed."""

    def read(name: str) -> str:
        package = VECHE_SERVICES[name]
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
        schema = importlib.import_module(f"{package}.schema").schema
        result = schema.execute_sync("{ _service { sdl } }")
        assert result.errors is None, result.errors
        assert result.data is not None
        sdl: str = result.data["_service"]["sdl"]
        return sdl

    return read
