"""`SUPERGRAPH_FILE`: a supergraph Apollo's composer wrote gives the same gateway as
live composition from the subgraphs' `_service { sdl }`.

Each supergraph here is composed by Apollo's `@apollo/composition` (`apollo/`,
as `test_apollo_composition.py` runs it), written to a file, and read by the
gateway; the client schema, the printed plans and the responses are compared
with a gateway composing the same subgraphs live. Three sets: a small one of
in-process subgraphs with `@key`, `@requires`, `@provides`, `@interfaceObject`,
`@shareable` and `@override`; the HTTP test subgraphs of `conftest.py`; and
Veche's real users, polls and issues (schema, cost directives and plans).
Then a changed file is picked up on the poll, and a broken one keeps the last
good supergraph with `/ready` and `/health` saying why.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_operation_ast, lexicographic_sort_schema, parse, print_schema
from graphql.execution.values import get_variable_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_gateway.app import create_app
from veche_gateway.compose import compose
from veche_gateway.gateway import Gateway, GraphQLRequest
from veche_gateway.normalize import normalize
from veche_gateway.plan import build_plan
from veche_gateway.plan_tree import print_plan
from veche_gateway.settings import Settings
from veche_gateway.subgraph import load_subgraph
from veche_gateway.supergraph import Supergraph
from veche_gateway.supergraph_file import SupergraphFileError, extract_subgraphs
from veche_gateway.testing import LocalSubgraph, LocalTransport, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key",'
    ' "@shareable", "@external", "@requires", "@provides", "@override", "@interfaceObject",'
    ' "@inaccessible", "@tag"])\n'
)
PRODUCTS = (
    LINK
    + """
type Query { products: [Product!]! media: [Media!]! here: Location @shareable }
type Product @key(fields: "id") {
  id: ID! name: String! weight: Int! stock: Int! secret: String @inaccessible
}
interface Media @key(fields: "id") { id: ID! title: String! }
type Book implements Media @key(fields: "id") { id: ID! title: String! pages: Int! }
type Movie implements Media @key(fields: "id") { id: ID! title: String! minutes: Int! }
type Location @shareable { city: String! }
"""
)
INVENTORY = (
    LINK
    + """
type Product @key(fields: "id") {
  id: ID!
  weight: Int! @external
  shipping: Int! @requires(fields: "weight")
  stock: Int! @override(from: "products")
}
"""
)
REVIEWS = (
    LINK
    + """
type Query { topReviews: [Review!]! here: Location @shareable }
type Review @key(fields: "id") {
  id: ID! body: String! @tag(name: "public") author: User @provides(fields: "name") product: Product
}
type User @key(fields: "id") { id: ID! name: String! @external }
type Product @key(fields: "id") { id: ID! reviews: [Review!]! }
type Media @key(fields: "id") @interfaceObject { id: ID! rating: Int! }
type Location @shareable { city: String! }
"""
)
USERS = (
    LINK
    + """
type Query { users: [User!]! }
type User @key(fields: "id") { id: ID! name: String! @shareable email: String! }
"""
)
PRODUCT_ROWS = [
    {"id": "p1", "name": "Kettle", "weight": 2, "stock": 100, "secret": "x"},
    {"id": "p2", "name": "Lamp", "weight": 5, "stock": 100, "secret": "y"},
]
MEDIA = [
    {"__typename": "Book", "id": "m1", "title": "Dead Souls", "pages": 352},
    {"__typename": "Movie", "id": "m2", "title": "Stalker", "minutes": 161},
]
REVIEW_ROWS = [
    {"id": "r1", "body": "Boils fast", "author": {"id": "u1", "name": "Anna (reviews)"},
     "product": {"id": "p1"}},
    {"id": "r2", "body": "Too bright", "author": {"id": "u2", "name": "Boris (reviews)"},
     "product": {"id": "p2"}},
]  # fmt: skip
SMALL_QUERIES = [
    "{ products { id name shipping stock reviews { body author { name email } } } }",
    "{ topReviews { body author { name } product { name shipping } } }",
    "{ media { __typename id title rating ... on Book { pages } ... on Movie { minutes } } }",
    "{ here { city } users { id name } }",
]


def _small_subgraphs(*names: str) -> list[LocalSubgraph]:
    everything = {
        "products": LocalSubgraph(
            "products",
            PRODUCTS,
            root={"products": PRODUCT_ROWS, "media": MEDIA, "here": {"city": "Kaluga"}},
            entities={
                "Product": PRODUCT_ROWS,
                "Media": MEDIA,
                "Book": MEDIA[:1],
                "Movie": MEDIA[1:],
            },
        ),
        "inventory": LocalSubgraph(
            "inventory",
            INVENTORY,
            entities={
                "Product": [
                    {"id": "p1", "stock": 3, "shipping": lambda p: p["weight"] * 10},
                    {"id": "p2", "stock": 0, "shipping": lambda p: p["weight"] * 10},
                ]
            },
        ),
        "reviews": LocalSubgraph(
            "reviews",
            REVIEWS,
            root={"topReviews": REVIEW_ROWS, "here": {"city": "Kaluga"}},
            entities={
                "Product": [
                    {"id": "p1", "reviews": REVIEW_ROWS[:1]},
                    {"id": "p2", "reviews": REVIEW_ROWS[1:]},
                ],
                "Media": [{"id": "m1", "rating": 5}, {"id": "m2", "rating": 4}],
                "Review": REVIEW_ROWS,
            },
        ),
        "users": LocalSubgraph(
            "users",
            USERS,
            root={"users": [{"id": "u1", "name": "Anna", "email": "a@x"}]},
            entities={
                "User": [
                    {"id": "u1", "name": "Anna", "email": "a@x"},
                    {"id": "u2", "name": "Boris", "email": "b@x"},
                ]
            },
        ),
    }
    return [everything[n] for n in names or everything]


def _apollo_supergraph(script: Path, subgraphs: dict[str, tuple[str, str]]) -> str:
    """Apollo's supergraph SDL for name -> (url, SDL), as `rover supergraph compose`
    would write it."""
    run = subprocess.run(
        ["node", str(script)],
        input=json.dumps([{"name": n, "url": u, "sdl": s} for n, (u, s) in subgraphs.items()]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(run.stdout)
    assert "errors" not in result, "Apollo's composition failed:\n" + "\n".join(result["errors"])
    sdl: str = result["supergraphSdl"]
    return sdl


@functools.cache
def _local_supergraph(script: Path, names: tuple[str, ...] = ()) -> str:
    """Apollo's supergraph of the small set (or of the named part of it), composed once
    per session: the file every test below starts from."""
    subgraphs = _small_subgraphs(*names)
    return _apollo_supergraph(script, {s.name: (f"local://{s.name}", s.sdl) for s in subgraphs})


async def _file_gateway(path: Path, *subgraphs: LocalSubgraph, poll: float = 0) -> Gateway:
    transport = LocalTransport(*subgraphs)
    settings = Settings(supergraph_file=path, subgraphs=transport.urls, poll_interval_seconds=poll)
    gateway = Gateway(settings, transport=transport)
    await gateway.start()
    return gateway


def _sorted_schema(supergraph: Supergraph) -> str:
    return print_schema(lexicographic_sort_schema(supergraph.schema))


def _plan(supergraph: Supergraph, query: str) -> str:
    document = parse(query)
    operation = get_operation_ast(document, None)
    assert operation is not None
    values = get_variable_values(supergraph.schema, operation.variable_definitions or (), {})
    assert not isinstance(values, list), values
    return print_plan(
        build_plan(supergraph, normalize(supergraph.schema, document, operation, values))
    )


async def test_the_small_set_from_apollo_s_file_plans_and_answers_as_live(
    apollo_composition: Path, tmp_path: Path
) -> None:
    path = tmp_path / "supergraph.graphql"
    path.write_text(_local_supergraph(apollo_composition))
    live = await local_gateway(*_small_subgraphs())
    from_file = await _file_gateway(path, *_small_subgraphs())
    try:
        assert from_file.last_composition_error is None
        assert live.supergraph is not None
        assert from_file.supergraph is not None
        assert _sorted_schema(from_file.supergraph) == _sorted_schema(live.supergraph)
        # Apollo lists the graphs alphabetically; SUBGRAPHS keeps the tie-breaking order
        assert list(from_file.supergraph.subgraphs) == list(live.supergraph.subgraphs)
        for query in SMALL_QUERIES:
            assert plan_text(from_file, query) == plan_text(live, query), query
            got = await from_file.execute(GraphQLRequest(query), {})
            assert "errors" not in got, got
            assert got == await live.execute(GraphQLRequest(query), {}), query
        sample = await from_file.execute(GraphQLRequest(SMALL_QUERIES[0]), {})
        assert sample["data"]["products"][1] == {
            "id": "p2",
            "name": "Lamp",
            "shipping": 50,  # @requires(weight) from products
            "stock": 0,  # @override: inventory's
            # the name @provides gave, the email from users
            "reviews": [
                {"body": "Too bright", "author": {"name": "Boris (reviews)", "email": "b@x"}}
            ],
        }
        assert "secret" not in from_file.supergraph.schema.type_map["Product"].fields  # type: ignore[attr-defined]
    finally:
        await live.stop()
        await from_file.stop()


def _http_app(subgraph: LocalSubgraph) -> Starlette:
    """A `LocalSubgraph` served over HTTP, as a real subgraph is."""

    async def graphql(request: Request) -> Response:
        return JSONResponse(await subgraph.execute(await request.json()))

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


async def test_over_http_the_file_s_gateway_answers_as_the_live_one(
    apollo_composition: Path,
    tmp_path: Path,
    start_gateway: Callable[..., Awaitable[Any]],
    serve_app: Callable[[Any], Awaitable[Any]],
) -> None:
    served = {s.name: await serve_app(_http_app(s)) for s in _small_subgraphs()}
    urls = {name: f"{s.url}/graphql" for name, s in served.items()}
    sdls = {s.name: s.sdl for s in _small_subgraphs()}
    path = tmp_path / "supergraph.graphql"
    path.write_text(_apollo_supergraph(apollo_composition, {n: (urls[n], sdls[n]) for n in urls}))
    live = await start_gateway(urls)
    # SUBGRAPHS names only the order here: the urls are the file's
    from_file = await start_gateway(dict.fromkeys(urls, "http://unused"), supergraph_file=path)
    admin = {"X-Admin-Secret": "s3cret"}  # the printed plan comes back as well
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as want,
        httpx.AsyncClient(base_url=from_file.url, timeout=10) as got,
    ):
        assert (await got.get("/ready")).json()["ready"] is True
        health = (await got.get("/health")).json()
        assert health["status"] == "ok", health
        assert health["supergraphFile"]["path"] == str(path)
        assert health["subgraphs"]["users"]["url"] == urls["users"]
        for query in SMALL_QUERIES:
            answer = await got.post("/graphql", json={"query": query}, headers=admin)
            expected = await want.post("/graphql", json={"query": query}, headers=admin)
            assert "errors" not in answer.json(), answer.json()
            assert "queryPlan" in answer.json()["extensions"]
            assert answer.json() == expected.json(), query


def test_veche_s_services_from_apollo_s_file_compose_and_plan_as_live(
    apollo_composition: Path, service_sdl: Callable[[str], str]
) -> None:
    names = ("users", "polls", "issues")
    sdls = {n: service_sdl(n) for n in names}
    text = _apollo_supergraph(
        apollo_composition, {n: (f"http://{n}/graphql", sdls[n]) for n in names}
    )
    extracted = {e.name: e for e in extract_subgraphs(text)}
    assert sorted(extracted) == sorted(names)
    from_file = compose([load_subgraph(n, extracted[n].url, extracted[n].sdl) for n in names])
    live = compose([load_subgraph(n, f"http://{n}/graphql", sdls[n]) for n in names])
    assert _sorted_schema(from_file) == _sorted_schema(live)
    assert from_file.demand == live.demand  # @listSize/@cost carried over
    assert from_file.demand.list_sizes  # ... and there are some
    for query in [
        "{ me { displayName email reportedIssues(first: 5) { totalCount edges { node { title poll { title author { displayName } } } } } } }",
        "{ polls(first: 3) { edges { node { title author { displayName district { id } } sourceInitiative { title reporter { displayName } } } } } districts { id } }",
        '{ issue(id: "1") { title reporter { displayName ballots(first: 2) { totalCount } } department { id } } }',
    ]:  # fmt: skip
        assert _plan(from_file, query) == _plan(live, query), query


async def test_a_changed_file_is_picked_up_and_a_broken_one_keeps_the_last_good(
    apollo_composition: Path, tmp_path: Path
) -> None:
    path = tmp_path / "supergraph.graphql"
    path.write_text(_local_supergraph(apollo_composition, ("products", "users")))
    full = _local_supergraph(apollo_composition)
    gateway = await _file_gateway(path, *_small_subgraphs(), poll=0.05)
    query = GraphQLRequest("{ products { name shipping } }")
    try:
        assert gateway.supergraph is not None
        first = gateway.supergraph.version
        assert "shipping" not in gateway.supergraph.schema.type_map["Product"].fields  # type: ignore[attr-defined]

        path.write_text(full)  # the poll sees it, no reload asked
        async with asyncio.timeout(5):
            while gateway.supergraph.version == first:  # noqa: ASYNC110 - the poller's swap
                await asyncio.sleep(0.02)
        assert list(gateway.supergraph.subgraphs) == ["products", "inventory", "reviews", "users"]
        answer = await gateway.execute(query, {})
        assert answer == {"data": {"products": [{"name": "Kettle", "shipping": 20},
                                                {"name": "Lamp", "shipping": 50}]}}  # fmt: skip
        good = gateway.supergraph.version

        path.write_text(full[: len(full) // 2])  # caught half-written
        assert await gateway.reload() is False
        assert gateway.supergraph.version == good
        assert await gateway.execute(query, {}) == answer
        app = create_app(gateway.settings, gateway=gateway)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as http:
            ready = await http.get("/ready")
            assert ready.status_code == 200  # the last good one serves
            error = ready.json()["supergraphFile"]["error"]
            assert error.startswith(f"the supergraph file {path} is refused: ")
            health = (await http.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["lastCompositionError"] == error

            path.unlink()
            await gateway.reload()
            assert (
                "cannot read the supergraph file"
                in (await http.get("/ready")).json()["supergraphFile"]["error"]
            )

            path.write_text(full)  # the good file again: nothing is wrong any more
            assert await gateway.reload() is False
            assert gateway.supergraph.version == good
            assert "supergraphFile" not in (await http.get("/ready")).json()
            assert (await http.get("/health")).json()["lastCompositionError"] is None
    finally:
        await gateway.stop()


async def test_a_file_not_there_yet_is_not_ready_until_it_is(
    apollo_composition: Path, tmp_path: Path
) -> None:
    path = tmp_path / "later.graphql"
    gateway = await _file_gateway(path, *_small_subgraphs())
    try:
        app = create_app(gateway.settings, gateway=gateway)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as http:
            ready = await http.get("/ready")
            assert ready.status_code == 503
            assert "cannot read the supergraph file" in ready.json()["supergraphFile"]["error"]
            assert gateway.pools == {}

            path.write_text(_local_supergraph(apollo_composition))
            assert await gateway.reload() is True
            assert (await http.get("/ready")).json()["ready"] is True
            health = (await http.get("/health")).json()
            assert health["status"] == "ok", health
            assert list(health["subgraphs"]) == ["products", "inventory", "reviews", "users"]
            assert health["subgraphs"]["users"]["breaker"]["state"] == "closed"
    finally:
        await gateway.stop()


# ─────────────────────── what the extraction refuses, and join v0.2 ───────────────────────

V02 = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.2", for: EXECUTION)
{ query: Query }

directive @join__field(graph: join__Graph!, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar join__FieldSet
enum join__Graph {
  A @join__graph(name: "a", url: "http://a/graphql")
  B @join__graph(name: "b", url: "http://b/graphql")
}
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

type Query @join__type(graph: A) @join__type(graph: B) {
  things: [Thing] @join__field(graph: A)
  color: Color @join__field(graph: B)
}
union Thing @join__type(graph: A) = Cat | Dog
type Cat @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  name: String @join__field(graph: A)
  owner: String @join__field(graph: B)
}
type Dog @join__type(graph: A) { id: ID! }
enum Color @join__type(graph: B) { RED GREEN }
"""


def test_the_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPERGRAPH_FILE", str(tmp_path / "supergraph.graphql"))
    assert Settings().supergraph_file == tmp_path / "supergraph.graphql"
    monkeypatch.delenv("SUPERGRAPH_FILE")
    assert Settings().supergraph_file is None


def test_a_join_v0_2_supergraph_is_read() -> None:
    extracted = extract_subgraphs(V02)
    supergraph = compose([load_subgraph(e.name, e.url, e.sdl) for e in extracted])
    assert [e.name for e in extracted] == ["a", "b"]
    assert list(supergraph.schema.type_map["Thing"].types) == [  # type: ignore[attr-defined]
        supergraph.schema.type_map["Cat"],
        supergraph.schema.type_map["Dog"],
    ]
    assert supergraph.field_resolvers("Cat", "owner") == ["b"]
    assert supergraph.field_resolvers("Cat", "id") == ["a", "b"]
    assert list(supergraph.schema.type_map["Color"].values) == ["RED", "GREEN"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('@link(url: "https://specs.apollo.dev/join/v0.2", for: EXECUTION)',
             '@link(url: "https://specs.apollo.dev/join/v0.2", for: EXECUTION)\n'
             '  @link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)'),
            '@link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY) is a'
            " feature the gateway does not implement",
        ),
        (
            ("owner: String @join__field(graph: B)", "owner: String @join__field(graph: B) @audit"),
            'directive "@audit" on field "Cat.owner" cannot be represented',
        ),
        (
            ("owner: String @join__field(graph: B)",
             'owner: String @join__field(graph: B, override: "a", overrideLabel: "percent(5)")'),
            'field "Cat.owner": progressive @override(label:) is not supported',
        ),
        (
            ("join/v0.2", "join/v0.1"),
            "join v0.1 is not supported (v0.2 to v0.5 are): a Federation 1 supergraph",
        ),
        (("type Dog", "typo Dog"), "the supergraph does not parse: Syntax Error: Unexpected Name 'typo'."),
        (
            ('A @join__graph(name: "a", url: "http://a/graphql")', "A"),
            "join__Graph.A needs one @join__graph(name:, url:)",
        ),
        (
            ("type Dog @join__type(graph: A)", "type Dog @join__type(graph: C)"),
            '@join__type on "Dog" names no graph of join__Graph (graph: C)',
        ),
    ],
    ids=[
        "security-spec",
        "custom-directive",
        "progressive-override",
        "fed1",
        "syntax",
        "graph",
        "unknown-graph",
    ],
)  # fmt: skip
def test_what_cannot_be_represented_is_refused_by_name(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in V02
    with pytest.raises(SupergraphFileError) as refused:
        extract_subgraphs(V02.replace(old, new))
    assert str(refused.value) == message
