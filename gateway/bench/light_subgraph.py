"""A federation subgraph that costs almost nothing per request, for bench_wrk.py.

    .venv/bin/python gateway/bench/light_subgraph.py {catalog|people|teams} PORT

Three tiny Strawberry federation schemas over fixed in-memory data: `catalog`
lists items whose owner is a `User`, `people` resolves users (each in a `Team`),
`teams` resolves teams, so a query can join two or chain three subgraphs. Each
distinct request body is executed by Strawberry once; the encoded response is
kept and sent back byte for byte when the same body comes again (a gateway
under load repeats its fetches exactly), so a request costs a minimal HTTP/1.1
keep-alive server's parsing and one dict lookup. The subgraph's CPU then stays
out of the way of the gateway's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.federation import Schema
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

ITEMS = 10
USERS = 5
TEAMS = 2
MEMO_LIMIT = 10_000  # distinct bodies kept; a benchmark sends a handful


# --- catalog: items, each owned by a user --------------------------------------


@strawberry.federation.type(
    name="User", keys=[Key(fields=FieldSet("id"), resolvable=False)], description="A user, by id."
)
class CatalogUser:
    id: strawberry.ID


@strawberry.type(description="An item of the catalog.")
class Item:
    id: strawberry.ID
    name: str
    price: int
    owner: CatalogUser


def _items(first: int = ITEMS) -> list[Item]:
    return [
        Item(
            id=strawberry.ID(f"i{n}"),
            name=f"Item {n}",
            price=100 * n,
            owner=CatalogUser(id=strawberry.ID(f"u{n % USERS}")),
        )
        for n in range(min(first, ITEMS))
    ]


@strawberry.type
class CatalogQuery:
    items: list[Item] = strawberry.field(
        resolver=_items, description="The first items of the catalog."
    )


# --- people: users, each in a team ---------------------------------------------


@strawberry.federation.type(
    name="Team", keys=[Key(fields=FieldSet("id"), resolvable=False)], description="A team, by id."
)
class PeopleTeam:
    id: strawberry.ID


@strawberry.federation.type(keys=["id"], description="A user of the catalog.")
class User:
    id: strawberry.ID
    name: str
    email: str
    team: PeopleTeam

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        n = int(id[1:])
        return cls(
            id=id,
            name=f"User {n}",
            email=f"user{n}@example.org",
            team=PeopleTeam(id=strawberry.ID(f"t{n % TEAMS}")),
        )


def _user(id: strawberry.ID) -> User:
    return User.resolve_reference(id)


@strawberry.type
class PeopleQuery:
    user: User = strawberry.field(resolver=_user, description="One user by id.")


# --- teams -----------------------------------------------------------------------


@strawberry.federation.type(keys=["id"], description="A team of users.")
class Team:
    id: strawberry.ID
    title: str
    size: int

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Team:
        n = int(id[1:])
        return cls(id=id, title=f"Team {n}", size=3 + n)


def _teams() -> list[Team]:
    return [Team.resolve_reference(strawberry.ID(f"t{n}")) for n in range(TEAMS)]


@strawberry.type
class TeamsQuery:
    teams: list[Team] = strawberry.field(resolver=_teams, description="Every team.")


SCHEMAS: dict[str, Callable[[], Schema]] = {
    "catalog": lambda: Schema(query=CatalogQuery, types=[CatalogUser]),
    "people": lambda: Schema(query=PeopleQuery, types=[User, PeopleTeam]),
    "teams": lambda: Schema(query=TeamsQuery, types=[Team]),
}


class Answers:
    """Request body -> encoded GraphQL response, executed once per distinct body."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.memo: dict[bytes, bytes] = {}

    def __call__(self, body: bytes) -> bytes:
        known = self.memo.get(body)
        if known is not None:
            return known
        try:
            request = json.loads(body)
            result = self.schema.execute_sync(
                request["query"],
                variable_values=request.get("variables"),
                operation_name=request.get("operationName"),
            )
            response: dict[str, Any] = {"data": result.data}
            if result.errors:
                response["errors"] = [e.formatted for e in result.errors]
        except (ValueError, KeyError, TypeError) as exc:
            response = {"errors": [{"message": f"bad request: {exc}"}]}
        encoded = json.dumps(response, separators=(",", ":")).encode()
        if len(self.memo) < MEMO_LIMIT:
            self.memo[body] = encoded
        return encoded


class Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough for a gateway's POSTs (Content-Length or chunked)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self._request()) is not None:
            response = self.answer(request)
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(response), response)
            )

    def _request(self) -> bytes | None:
        """The next complete request's body, taken off the buffer; None until one is in."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).decode("latin-1").lower()
        start = end + 4
        if "transfer-encoding: chunked" in head:
            body = bytearray()
            at = start
            while True:
                line_end = self.buffer.find(b"\r\n", at)
                if line_end < 0:
                    return None
                size = int(bytes(self.buffer[at:line_end]).split(b";")[0], 16)
                if len(self.buffer) < line_end + 2 + size + 2:
                    return None
                body += self.buffer[line_end + 2 : line_end + 2 + size]
                at = line_end + 2 + size + 2
                if size == 0:
                    del self.buffer[:at]
                    return bytes(body)
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.partition(":")[2])
        if len(self.buffer) < start + length:
            return None
        body_bytes = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        return body_bytes


async def serve(name: str, port: int) -> None:
    answers = Answers(SCHEMAS[name]())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(answers), "127.0.0.1", port)
    print(f"{name} subgraph at http://127.0.0.1:{port}/graphql", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
