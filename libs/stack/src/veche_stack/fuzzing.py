"""Schema-aware fuzzing of a running stack: what the fuzz test and the fuzz
benchmark send, and what every answer must satisfy.

Operations come from `hypothesis-graphql` over each endpoint's own schema
(read by introspection): valid ones and ones with a single schema violation,
queries and mutations. Malformed requests are the ones attackers and broken
clients send: bodies that are not GraphQL requests, deep JSON, lone UTF-16
surrogates, bytes that are not UTF-8, cross-site content types. The rule for
every answer is the same: no 5xx, a JSON body, and every error carries an
`extensions.code` other than `INTERNAL`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from graphql import (
    GraphQLSchema,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    build_client_schema,
    get_introspection_query,
)
from graphql.language import NameNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries
from hypothesis_graphql import nodes as gql_nodes
from hypothesis_graphql.strategies import Mode

from veche_stack.testing import fresh_code


def load_schema(http: httpx.Client, url: str) -> GraphQLSchema:
    """The endpoint's schema as its introspection shows it to clients."""
    response = http.post(url, json={"query": get_introspection_query(descriptions=False)})
    response.raise_for_status()
    return build_client_schema(response.json()["data"])


def _datetimes() -> st.SearchStrategy[StringValueNode]:
    return st.one_of(
        st.datetimes().map(lambda moment: f"{moment.isoformat()}Z"),
        st.text(max_size=30),
    ).map(gql_nodes.String)


def _dates() -> st.SearchStrategy[StringValueNode]:
    return st.one_of(st.dates().map(lambda day: day.isoformat()), st.text(max_size=12)).map(
        gql_nodes.String
    )


def _representations() -> st.SearchStrategy[ObjectValueNode]:
    """`_Any` values as a gateway sends them, and ones no gateway would."""
    typename = st.sampled_from(["User", "Poll", "Issue", "District", "Nope", ""])
    key = st.one_of(st.text(max_size=30), st.sampled_from(["0" * 24, "f" * 24]))

    def representation(name: str, value: str) -> ObjectValueNode:
        fields = [
            ObjectFieldNode(name=NameNode(value="__typename"), value=gql_nodes.String(name)),
            ObjectFieldNode(name=NameNode(value="id"), value=gql_nodes.String(value)),
        ]
        return ObjectValueNode(fields=tuple(fields))

    return st.builds(representation, typename, key)


SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "DateTime": _datetimes(),
    "Date": _dates(),
    "_Any": _representations(),
}


def operations(schema: GraphQLSchema) -> st.SearchStrategy[str]:
    """Queries and mutations for `schema`: valid ones and ones with one violation."""
    choices: list[st.SearchStrategy[str]] = []
    for mode in (Mode.POSITIVE, Mode.NEGATIVE):
        choices.append(queries(schema, custom_scalars=SCALARS, mode=mode))
        if schema.mutation_type is not None:
            choices.append(mutations(schema, custom_scalars=SCALARS, mode=mode))
    return st.one_of(choices)


@dataclass(frozen=True)
class Malformed:
    """A request no well-behaved client sends."""

    what: str
    content: bytes
    content_type: str = "application/json"
    headers: dict[bytes, bytes] = field(default_factory=dict)
    method: str = "POST"
    params: dict[str, str] | None = None


def _deep(depth: int) -> bytes:
    return b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * depth + b"]" * depth + b"}}"


def malformed_requests() -> Iterator[Malformed]:
    for body in (b"null", b"1", b'"x"', b"[]", b"{}", b"true", b"", b"{", b"\xff\xfe"):
        yield Malformed(f"body {body!r}", body)
    yield Malformed("query not a string", b'{"query": 1}')
    yield Malformed("variables not an object", b'{"query": "{ __typename }", "variables": [1]}')
    yield Malformed(
        "operationName not a string", b'{"query": "{ __typename }", "operationName": 5}'
    )
    yield Malformed("extensions not an object", b'{"query": "{ __typename }", "extensions": "x"}')
    yield Malformed("unknown operation name", b'{"query": "{ __typename }", "operationName": "X"}')
    yield Malformed("syntax error", b'{"query": "{ __typename "}')
    yield Malformed("empty query", b'{"query": ""}')
    yield Malformed("JSON nested 2000 deep", _deep(2000))
    yield Malformed("JSON nested 100000 deep", _deep(100_000))
    yield Malformed("lone surrogate in the query", b'{"query": "{ __typename } # \\ud800"}')
    yield Malformed(
        "lone surrogate in a variable",
        b'{"query": "query($t: String) { __typename }", "variables": {"t": "\\udfff"}}',
    )
    yield Malformed(
        "bytes that are not UTF-8 in the query", b'{"query": "{ __typename \xc3\x28 }"}'
    )
    yield Malformed(
        "X-Request-Id with byte 0xFF",
        b'{"query": "{ __typename }"}',
        headers={b"X-Request-Id": b"abc\xff"},
    )
    yield Malformed(
        "Authorization that is not a token",
        b'{"query": "{ __typename }"}',
        headers={b"Authorization": "Bearer \u00e9\u00e9.x.y".encode()},
    )
    yield Malformed("JSON sent as text/plain", b'{"query": "{ __typename }"}', "text/plain")
    yield Malformed(
        "form-encoded body", b"query=%7B__typename%7D", "application/x-www-form-urlencoded"
    )
    yield Malformed("GET with a mutation", b"", method="GET", params={"query": "mutation { x }"})
    yield Malformed(
        "GET with broken variables",
        b"",
        method="GET",
        params={
            "query": "query($a: Int) { __typename }",
            "variables": "{not json",
        },
    )
    yield Malformed("a 5 MB query", json.dumps({"query": "{" + " a" * 2_500_000 + "}"}).encode())


@dataclass
class Tally:
    """What a fuzz run saw."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def record(self, what: str, response: httpx.Response) -> list[str]:
        """Counts the answer; returns (and keeps) what is wrong with it."""
        self.requests += 1
        self.by_status[response.status_code] = self.by_status.get(response.status_code, 0) + 1
        found = problems(response)
        for error in _errors(response):
            code = str(error.get("extensions", {}).get("code"))
            self.codes[code] = self.codes.get(code, 0) + 1
        self.problems.extend(f"{what}: {problem}" for problem in found)
        return found


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors or [] if isinstance(error, dict)]


def problems(response: httpx.Response) -> list[str]:
    """What breaks the rule: a 5xx, a body that is not JSON, an error without a
    code or with `INTERNAL`."""
    found: list[str] = []
    if response.status_code >= 500:
        found.append(f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code == 413:
        return found  # a size refusal may come before any GraphQL processing
    try:
        body = response.json()
    except ValueError:
        return [*found, f"HTTP {response.status_code}, not JSON: {response.text[:200]!r}"]
    if not isinstance(body, dict):
        return [*found, f"not a GraphQL response: {response.text[:200]!r}"]
    for error in _errors(response):
        code = error.get("extensions", {}).get("code")
        if code is None:
            found.append(f"error without a code: {error.get('message')!r}")
        elif code == "INTERNAL":
            found.append(f"INTERNAL at {error.get('path')}: {error.get('message')!r}")
    return found


def send(http: httpx.Client, url: str, request: Malformed) -> httpx.Response:
    headers = {b"Content-Type": request.content_type.encode(), **request.headers}
    if request.method == "GET":
        return http.get(url, params=request.params, headers=headers)
    return http.post(url, content=request.content, headers=headers)


def callers(
    http: httpx.Client, gateway: str, admin_password: str, admin_totp_secret: str
) -> list[str | None]:
    """Who sends: nobody, a newly registered citizen, the admin (access tokens; the
    admin signs in with a code from their two-factor secret)."""
    registered = http.post(
        gateway,
        json={
            "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            "variables": {
                "i": {
                    "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.ru",
                    "password": "fuzz password 1",
                    "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
                    "displayName": "Фаззер",
                    "districtId": "leninsky",
                    "birthYear": 1990,
                }
            },
        },
    ).json()
    admin = http.post(
        gateway,
        json={
            "query": "mutation($e: String!, $p: String!, $t: String) "
            "{ login(email: $e, password: $p, totp: $t) { accessToken } }",
            "variables": {
                "e": "admin@veche.local",
                "p": admin_password,
                "t": fresh_code(admin_totp_secret, gateway),
            },
        },
    ).json()
    return [
        None,
        registered["data"]["register"]["accessToken"],
        admin["data"]["login"]["accessToken"],
    ]


def fuzz(
    http: httpx.Client, url: str, tokens: Sequence[str | None], examples: int, tally: Tally
) -> None:
    """Sends `examples` generated operations to `url`, each as one of `tokens`."""

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(query=operations(load_schema(http, url)), token=st.sampled_from(list(tokens)))
    def run(query: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        tally.record(query, http.post(url, json={"query": query}, headers=headers))

    run()


def refuse_malformed(http: httpx.Client, url: str, tally: Tally) -> None:
    """Sends every malformed request to `url`; a dropped connection is a problem too."""
    for request in malformed_requests():
        try:
            tally.record(request.what, send(http, url, request))
        except httpx.TransportError as error:
            tally.problems.append(f"{request.what}: {error!r}")
