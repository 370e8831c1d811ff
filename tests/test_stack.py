"""The whole stack as `make run` starts it (`python -m veche_stack`): every
process up, a first flow through the one endpoint, and Ctrl-C leaves nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql import gql as gql_document
from gql.transport.httpx import HTTPXAsyncTransport
from prometheus_client.parser import text_string_to_metric_families

from veche_kit.clock import utcnow
from veche_polls.audit import commitment
from veche_stack.processes import port_open
from veche_stack.runner import Runner
from veche_stack.stack import SERVICES
from veche_stack.testing import GraphQLClient, eventually, fresh_code_async

pytestmark = pytest.mark.stack

ADMIN_PASSWORD = "stack-admin-pass-1"
ADMIN_TOTP_SECRET = "HTGAYXTI5RIEUEI25EV6PMLEMOSVZVVF"
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { accessToken user { id displayName roles district { name } } }
}"""
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken user { roles } }
}"""


async def admin_login(client: GraphQLClient) -> dict[str, Any]:
    """The seeded admin's sign-in, with a TOTP code no earlier one used."""
    code = await fresh_code_async(ADMIN_TOTP_SECRET, client.url)
    variables = {"e": "admin@veche.local", "p": ADMIN_PASSWORD, "t": code}
    login: dict[str, Any] = (await client.data(LOGIN, variables))["login"]
    return login


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = Runner(
        tmp_path_factory.mktemp("stack"),
        env={
            "VECHE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "VECHE_ADMIN_TOTP_SECRET": ADMIN_TOTP_SECRET,
            "ISSUES_SUPPORT_THRESHOLD": "2",  # an initiative reaches review with two supports
            # The neighbours here have not verified a phone (supports need one by default).
            "ISSUES_VERIFIED_SUPPORTS_BY_CATEGORY": '{"yards": false}',
        },
    )
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()  # when the Ctrl-C test did not run: the runner stops its children


def endpoint(stack: Runner) -> str:
    """The one endpoint clients use: the gateway when installed."""
    return stack.url("gateway")


@pytest.fixture
async def client(stack: Runner) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(endpoint(stack))
    yield client
    await client.aclose()


def test_make_run_prints_where_to_go(stack: Runner) -> None:
    text = stack.text
    assert f"admin account admin@veche.local / {ADMIN_PASSWORD}" in text
    assert f"admin two-factor secret {ADMIN_TOTP_SECRET}" in text
    assert endpoint(stack) in text


async def test_every_service_is_healthy(stack: Runner) -> None:
    async with httpx.AsyncClient() as http:
        for spec in SERVICES:
            health = (await http.get(stack.url(spec.name, "/health"))).json()
            assert health["mongo"] == "ok", health
            assert health["broker"] == "connected", health
            assert (await http.get(stack.url(spec.name, "/ready"))).status_code == 200


async def test_register_and_sign_in_through_the_endpoint(
    stack: Runner, client: GraphQLClient
) -> None:
    email = f"stack-{uuid.uuid4().hex[:8]}@example.ru"
    payload = {
        "email": email,
        "password": "stack password 1",
        "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
        "displayName": "Мария",
        "districtId": "oktyabrsky",
        "birthYear": 1985,
    }
    registered = (await client.data(REGISTER, {"input": payload}))["register"]
    assert registered["user"]["district"] == {"name": "Октябрьский округ"}
    me = await client.as_user(registered["accessToken"]).data("{ me { id email } }")
    assert me["me"] == {"id": registered["user"]["id"], "email": email}
    admin = await admin_login(client)
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


async def test_one_query_joins_all_three_services(stack: Runner, client: GraphQLClient) -> None:
    people = []
    for name in ("Автор", "Сосед", "Соседка"):
        payload = {
            "email": f"{uuid.uuid4().hex[:8]}@example.ru",
            "password": "stack password 1",
            "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
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
    admin = client.as_user((await admin_login(client))["accessToken"])

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


CREATE_POLL = """mutation($input: CreatePollInput!) { createPoll(input: $input) { id } }"""
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { status } }"
NOTICES = "{ me { notifications(first: 50) { edges { node { kind text link } } } } }"


async def _register(client: GraphQLClient, name: str, **fields: Any) -> GraphQLClient:
    payload = {
        "email": f"{uuid.uuid4().hex[:8]}@example.ru",
        "password": "stack password 1",
        "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
        "displayName": name,
        **fields,
    }
    registered = (await client.data(REGISTER, {"input": payload}))["register"]
    return client.as_user(registered["accessToken"])


async def _about(person: GraphQLClient, link: str, language: str | None = None) -> list[Any]:
    """The (kind, text) of the person's notices about `link`, in `language` if given."""
    reader = (
        person.with_headers(Accept_Language=language)
        if language
        else person.without_header("Accept-Language")
    )
    edges = (await reader.data(NOTICES))["me"]["notifications"]["edges"]
    return [(e["node"]["kind"], e["node"]["text"]) for e in edges if e["node"]["link"] == link]


async def test_the_inbox_tells_who_may_vote_once_in_their_language(
    stack: Runner, client: GraphQLClient
) -> None:
    """Through the gateway: a 60+ poll reaches the 65-year-old and not the 33-year-old;
    an initiative's author hears of its threshold once, and of its poll with the drafted
    title («…» already) quoted once; Accept-Language picks English, Russian otherwise."""
    year = utcnow().year
    young = await _register(client, "Младший", districtId="oktyabrsky", birthYear=year - 33)
    senior = await _register(client, "Старший", districtId="oktyabrsky", birthYear=year - 65)
    admin = client.as_user((await admin_login(client))["accessToken"])
    seniors = {
        "title": "Скамейки у поликлиники",
        "audience": {"districtIds": ["oktyabrsky"], "minAge": 60, "verifiedOnly": False},
        "questions": [{"text": "Нужны?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}],
    }
    poll_id = (await admin.data(CREATE_POLL, {"input": seniors}))["createPoll"]["id"]
    await admin.data(PUBLISH, {"id": poll_id})
    told = [("POLL_PUBLISHED", "Новый опрос для вашего района: «Скамейки у поликлиники».")]
    assert await eventually(lambda: _about(senior, f"poll:{poll_id}"), timeout=30) == told
    assert await _about(young, f"poll:{poll_id}") == []

    author = await _register(client, "Автор", districtId="leninsky")
    neighbours = [await _register(client, n, districtId="leninsky") for n in ("Сосед", "Соседка")]
    proposal = {"title": "Сквер у школы", "description": "Деревья и лавочки.", "category": "yards"}
    initiative = (await author.data(PROPOSE, {"input": proposal}))["proposeInitiative"]["id"]
    for neighbour in neighbours:
        await neighbour.data(SUPPORT, {"id": initiative})

    async def drafted() -> str | None:
        poll = (await admin.data(INITIATIVE_POLL, {"id": initiative}))["issue"]["poll"]
        return str(poll["title"]) if poll else None

    assert await eventually(drafted, timeout=30) == "«Сквер у школы»"
    found = await admin.data(
        "query($id: ID!) { issue(id: $id) { poll { id } } }", {"id": initiative}
    )
    drafted_id = found["issue"]["poll"]["id"]
    await admin.data(PUBLISH, {"id": drafted_id})
    put = await eventually(
        lambda: _about(author, f"poll:{drafted_id}", "en-GB,en;q=0.9"), timeout=30
    )
    assert put == [
        (
            "INITIATIVE_PUT_TO_POLL",
            "The initiative you backed is now put to a city poll: «Сквер у школы».",
        )
    ]
    assert await _about(author, f"issue:{initiative}") == [
        (
            "INITIATIVE_THRESHOLD_REACHED",
            "Ваша инициатива «Сквер у школы» собрала нужное число сторонников (2) и передана "
            "городу на рассмотрение.",
        )
    ]


SIGN_UP = gql_document("""mutation SignUp($input: RegisterInput!) {
  register(input: $input) { accessToken user { id displayName } }
}""")
SIGN_IN = gql_document("""mutation SignIn($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken }
}""")
NEW_POLL = gql_document("""mutation NewPoll($input: CreatePollInput!) {
  createPoll(input: $input) { id questions { id options { id } } }
}""")
PUBLISH_POLL = gql_document("mutation PublishPoll($id: ID!) { publishPoll(id: $id) { status } }")
FOR_ME = gql_document("""query ForMe { pollsForMe(first: 20) { edges { node { id title } } } }""")
CAST = gql_document("""mutation Cast($poll: ID!, $answers: [AnswerInput!]!) {
  castVote(pollId: $poll, answers: $answers) { id castAt receipt { commitment salt } }
}""")
REPORT_POTHOLE = gql_document("""mutation ReportPothole($input: ReportIssueInput!) {
  reportIssue(input: $input) { id status location { lat lon } department { name } }
}""")
SEARCH = gql_document("""query Search($text: String!) {
  issues(filter: {text: $text}, first: 10) { totalCount edges { node { id title } } }
}""")
ACCEPT = gql_document("""mutation Accept($id: ID!) {
  changeIssueStatus(id: $id, status: ACCEPTED, note: "Передано в дорожную службу") { status }
}""")
FOLLOW = gql_document("query Follow($id: ID!) { issue(id: $id) { status dueAt } }")
INBOX = gql_document("""query Inbox {
  me { points notifications(first: 20) { totalCount edges { node { kind link read } } } }
}""")


async def ask(
    session: Any, document: GraphQLRequest, variable_values: dict[str, Any] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = await session.execute(
        GraphQLRequest(document, variable_values=variable_values)
    )
    return result


def gql_client(stack: Runner, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = HTTPXAsyncTransport(url=endpoint(stack), headers=headers, timeout=30)
    # The schema is read by introspection and every document validated against it first.
    return Client(transport=transport, fetch_schema_from_transport=True)


async def test_a_citizen_with_the_gql_client(stack: Runner) -> None:
    """What a front end does, with a GraphQL client written by others (`gql`)."""
    async with gql_client(stack) as anonymous:
        joined = await ask(
            anonymous,
            SIGN_UP,
            variable_values={
                "input": {
                    "email": f"gql-{uuid.uuid4().hex[:8]}@example.ru",
                    "password": "gql client password 1",
                    "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
                    "displayName": "Ольга",
                    "districtId": "moskovsky",
                }
            },
        )
        code = await fresh_code_async(ADMIN_TOTP_SECRET, endpoint(stack))
        admin_sign_in = {"e": "admin@veche.local", "p": ADMIN_PASSWORD, "t": code}
        signed_in = await ask(anonymous, SIGN_IN, variable_values=admin_sign_in)
    token = joined["register"]["accessToken"]
    async with gql_client(stack, signed_in["login"]["accessToken"]) as admin:
        poll = (
            await ask(
                admin,
                NEW_POLL,
                variable_values={
                    "input": {
                        "title": "Новая остановка на Московской",
                        # Open to accounts without a verified phone, like this citizen's.
                        "audience": {"districtIds": ["moskovsky"], "verifiedOnly": False},
                        "questions": [
                            {"text": "Нужна?", "kind": "SINGLE_CHOICE", "options": ["Да", "Нет"]}
                        ],
                    }
                },
            )
        )["createPoll"]
        await ask(admin, PUBLISH_POLL, variable_values={"id": poll["id"]})
    async with gql_client(stack, token) as citizen:
        offered = await ask(citizen, FOR_ME)
        assert poll["id"] in [e["node"]["id"] for e in offered["pollsForMe"]["edges"]]
        question = poll["questions"][0]
        ballot = await ask(
            citizen,
            CAST,
            variable_values={
                "poll": poll["id"],
                "answers": [
                    {"questionId": question["id"], "optionIds": [question["options"][0]["id"]]}
                ],
            },
        )
        receipt = ballot["castVote"]["receipt"]
        assert receipt["commitment"] == commitment(ballot["castVote"]["id"], receipt["salt"])
        tag = uuid.uuid4().hex[:6]
        issue = (
            await ask(
                citizen,
                REPORT_POTHOLE,
                variable_values={
                    "input": {
                        "title": f"Ямы на остановке {tag}",
                        "description": "Две глубокие ямы у бордюра.",
                        "category": "potholes",
                        "location": {"lat": 54.5293, "lon": 36.2754},
                    }
                },
            )
        )["reportIssue"]
        assert issue["status"] == "NEW"
        assert issue["location"] == {"lat": 54.5293, "lon": 36.2754}
        found = await ask(citizen, SEARCH, variable_values={"text": f"яма {tag}"})
        assert [e["node"]["id"] for e in found["issues"]["edges"]] == [issue["id"]]
    async with gql_client(stack, signed_in["login"]["accessToken"]) as admin:
        await ask(admin, ACCEPT, variable_values={"id": issue["id"]})
    async with gql_client(stack, token) as citizen:
        followed = await ask(citizen, FOLLOW, variable_values={"id": issue["id"]})
        assert followed["issue"]["status"] == "ACCEPTED"
        assert followed["issue"]["dueAt"] is not None

        async def told() -> set[str]:
            inbox = (await ask(citizen, INBOX))["me"]
            kinds = {e["node"]["kind"] for e in inbox["notifications"]["edges"]}
            return kinds if {"POLL_PUBLISHED", "ISSUE_STATUS_CHANGED"} <= kinds else set()

        await eventually(told, timeout=30)


async def test_a_page_of_fifty_polls_with_their_questions_is_not_too_complex(
    stack: Runner, client: GraphQLClient
) -> None:
    """The cost limit counts the objects an answer holds, with the list sizes the
    subgraphs state (`@listSize`): an ordinary list screen passes (issue #13, item 3)."""
    page = """{ polls(first: 50) { totalCount edges { node { id title
      questions { id text kind options { id text } } } } } }"""
    body = await client.post(page)
    assert "errors" not in body, body
    assert body["data"]["polls"]["totalCount"] >= 1


async def test_every_service_serves_its_metrics(stack: Runner, client: GraphQLClient) -> None:
    refused = await client.error_code(LOGIN, {"e": "nobody@example.ru", "p": "wrong password 1"})
    async with httpx.AsyncClient() as http:
        series: dict[str, dict[str, float]] = {}
        for spec in SERVICES:
            text = (await http.get(stack.url(spec.name, "/metrics"))).text
            series[spec.name] = {
                f"{s.name}{sorted(s.labels.items())}": s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
    for name, found in series.items():
        graphql_ok = f"veche_http_requests_total{[('method', 'POST'), ('route', '/graphql'), ('status', '200')]}"
        assert found[graphql_ok] > 0, name
        assert found["veche_store_command_duration_seconds_count[('command', 'find')]"] > 0, name
        assert found["veche_outbox_pending[]"] >= 0, name
        assert (
            sum(v for k, v in found.items() if k.startswith("veche_graphql_operations_total")) > 0
        )
        assert not any("user_id" in key or "@" in key for key in found), name  # no personal labels
    assert series["users"][f"veche_graphql_errors_total[('code', '{refused}')]"] >= 1
    assert series["users"]["veche_events_applied_total[]"] >= 1  # polls' and issues' events
    assert series["users"]["veche_dead_letters[]"] == 0


async def test_a_local_front_end_may_call_the_endpoint(stack: Runner) -> None:
    preflight = {
        "Origin": "http://localhost:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with httpx.AsyncClient() as http:
        allowed = await http.options(endpoint(stack), headers=preflight)
        stranger = await http.options(
            endpoint(stack), headers={**preflight, "Origin": "https://evil.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "access-control-allow-origin" not in stranger.headers


UNKNOWN_POLL_VOTE = """mutation($poll: ID!) {
  castVote(pollId: $poll, answers: [{questionId: "q1", optionIds: ["o1"]}]) { id }
}"""
TOO_MANY_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"


@pytest.mark.parametrize(
    ("accept_language", "russian"),
    [(None, True), ("ru", True), ("de", True), ("en-GB,en;q=0.9", False)],
)
async def test_refusals_come_in_the_language_asked_for_through_the_gateway(
    stack: Runner, client: GraphQLClient, accept_language: str | None, russian: bool
) -> None:
    """The gateway's own refusal and a subgraph's (the header passed on) alike: Russian
    unless the request prefers English; the code is the same in both."""
    voter = await _register(client, "Голос", districtId="leninsky")
    asking = (
        voter.with_headers(Accept_Language=accept_language)
        if accept_language
        else voter.without_header("Accept-Language")
    )
    poll_id = f"nope-{uuid.uuid4().hex[:6]}"
    (unknown,) = (await asking.post(UNKNOWN_POLL_VOTE, {"poll": poll_id}))["errors"]
    (complex_,) = (await asking.post(TOO_MANY_ALIASES))["errors"]
    assert unknown["extensions"]["code"] == "NOT_FOUND"
    assert complex_["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    if russian:
        assert unknown["message"] == f"Опроса с id «{poll_id}» нет."
        assert complex_["message"].startswith("Операция слишком сложна: ")
    else:
        assert unknown["message"] == f"No poll with id '{poll_id}'."
        assert complex_["message"].startswith("The operation is too complex: ")


def test_ctrl_c_stops_every_process(stack: Runner, tmp_path: Path) -> None:
    assert stack.interrupt() == 0
    for name, port in stack.ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still listens on {port}"
