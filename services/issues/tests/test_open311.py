"""Open311 GeoReport v2 (read side) from the issues service's own data: services
and their definitions, service requests with the spec's filters, JSON and XML,
and refusals in Open311's error shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from veche_kit.reference import CATEGORIES as DEMO_CATEGORIES
from veche_kit.throttle import Window
from veche_stack.testing import bound_queue, eventually, take

from .conftest import CHANGE, IssuesServer

SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
    "lat", "long", "media_url",
}  # fmt: skip


# The descriptions asserted are the English ones; a partner asking for nothing reads Russian.
ENGLISH = {"Accept-Language": "en"}


async def get(issues: IssuesServer, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{issues.url}/open311/v2", headers=ENGLISH) as http:
        return await http.get(path, params=params)


async def test_services_are_the_categories_grouped_by_department(issues: IssuesServer) -> None:
    services = (await get(issues, "/services.json")).json()
    by_code = {s["service_code"]: s for s in services}
    assert by_code["potholes"] == {
        "service_code": "potholes",
        "service_name": "Ямы на дорогах",
        "description": "Ямы на дорогах",
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": "roads",
    }
    # The demo city's categories, and any an admin added (test_catalogue adds some).
    assert {c.id for c in DEMO_CATEGORIES} <= set(by_code)

    xml = await get(issues, "/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "services"
    assert {child.tag for child in root} == {"service"}
    assert {field.tag for field in root[0]} == SERVICE_FIELDS
    assert "potholes" in {s.findtext("service_code") for s in root}

    definition = (await get(issues, "/services/potholes.json")).json()
    assert definition == {"service_code": "potholes", "attributes": []}
    definition_xml = ElementTree.fromstring((await get(issues, "/services/potholes.xml")).content)
    assert definition_xml.tag == "service_definition"
    assert definition_xml.findtext("service_code") == "potholes"


async def test_a_report_is_a_service_request_that_follows_its_issue(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    issue = await issues.report(reporter, photos=["https://example.org/yama.jpg"])
    (request,) = (await get(issues, f"/requests/{issue['id']}.json")).json()
    assert set(request) == REQUEST_FIELDS
    assert request["service_request_id"] == issue["id"]
    assert request["status"] == "open"
    assert request["status_notes"] == "Received; awaiting moderation."
    assert request["service_code"] == "potholes"
    assert request["service_name"] == "Ямы на дорогах"
    assert request["agency_responsible"] == "roads"
    assert (request["lat"], request["long"]) == (54.5293, 36.2754)
    assert request["address"] == "ул. Кирова, 1"
    assert request["media_url"] == "https://example.org/yama.jpg"
    assert request["requested_datetime"].endswith("Z")
    assert request["expected_datetime"] is None

    moderator = issues.moderator()
    accepted = (await moderator.client.data(CHANGE, {"id": issue["id"], "status": "ACCEPTED"}))[
        "changeIssueStatus"
    ]
    (request,) = (await get(issues, f"/requests/{issue['id']}.json")).json()
    assert request["status"] == "open"
    due = datetime.fromisoformat(accepted["dueAt"]).replace(microsecond=0)
    assert datetime.fromisoformat(request["expected_datetime"]) == due

    official = issues.official("roads")
    await official.client.data(CHANGE, {"id": issue["id"], "status": "IN_PROGRESS"})
    await official.client.data(
        CHANGE, {"id": issue["id"], "status": "RESOLVED", "note": "Заделали яму."}
    )
    (request,) = (await get(issues, f"/requests/{issue['id']}.json")).json()
    assert (request["status"], request["status_notes"]) == ("closed", "Заделали яму.")

    root = ElementTree.fromstring((await get(issues, f"/requests/{issue['id']}.xml")).content)
    assert root.tag == "service_requests"
    assert {field.tag for field in root[0]} == REQUEST_FIELDS
    assert root[0].findtext("status") == "closed"


async def test_the_spec_filters(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    far = await issues.report(reporter, category="waste", location={"lat": 54.60, "lon": 36.10})
    near = await issues.report(reporter, category="potholes")
    rejected = await issues.report(reporter, category="potholes")
    await issues.moderator().client.data(
        CHANGE, {"id": rejected["id"], "status": "REJECTED", "note": "Дубль."}
    )
    initiative = await issues.propose(reporter)
    ours = {far["id"], near["id"], rejected["id"]}

    async def ids(**params: Any) -> set[str]:
        response = await get(issues, "/requests.json", **params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    listed = ",".join([*ours, initiative["id"]])
    assert await ids(service_request_id=listed) == ours  # initiatives are not service requests
    assert ours <= await ids()
    assert await ids(service_code="waste", service_request_id=listed) == ours  # ids override
    waste = await ids(service_code="waste")
    assert far["id"] in waste
    assert near["id"] not in waste
    closed = await ids(status="closed")
    assert rejected["id"] in closed
    assert near["id"] not in closed
    assert near["id"] in await ids(status="open")
    assert near["id"] in await ids(status="open,closed")
    around = await ids(lat="54.5293", long="36.2754", radius="300")
    assert near["id"] in around
    assert far["id"] not in around
    assert ours.isdisjoint(
        await ids(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z")
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/requests.json", {"start_date": "yesterday"}, 400, "start_date must be a W3C datetime"),
        (
            "/requests.json",
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            400,
            "at most 90 days apart",
        ),
        ("/requests.json", {"status": "pending"}, 400, "status must be open, closed"),
        ("/requests.json", {"lat": "54.5"}, 400, "lat and long go together"),
        ("/requests.json", {"lat": "54.5", "long": "36.2", "radius": "50000"}, 400, "radius"),
        ("/requests.json", {"lat": "nan", "long": "36.2"}, 400, "finite"),
        ("/requests.json", {"service_request_id": ",".join(["a"] * 101)}, 400, "at most 100"),
        ("/requests.json", {"jurisdiction_id": "moscow.ru"}, 404, "not served here"),
        ("/services/nope.json", {}, 404, "no service with service_code 'nope'"),
        ("/requests/nope.json", {}, 404, "no service request 'nope'"),
        ("/requests.yaml", {}, 404, "json or xml"),
        ("/tokens/abc.json", {}, 404, "no such token"),
    ],
)
async def test_refusals_come_in_open311_shape(
    issues: IssuesServer, path: str, params: dict[str, str], status: int, says: str
) -> None:
    response = await get(issues, path, **params)
    assert response.status_code == status
    (error,) = response.json()
    assert error["code"] == status
    assert says in error["description"], error


async def test_an_xml_refusal_is_xml(issues: IssuesServer) -> None:
    response = await get(issues, "/requests.xml", status="pending")
    assert response.status_code == 400
    root = ElementTree.fromstring(response.content)
    assert root.tag == "errors"
    assert root[0].tag == "error"
    assert root[0].findtext("code") == "400"
    assert "status must be" in (root[0].findtext("description") or "")


@pytest.mark.parametrize(
    ("accept_language", "says"),
    [
        (None, "status: open, closed или оба (через запятую)"),
        ("ru-RU", "status: open, closed или оба (через запятую)"),
        ("de", "status: open, closed или оба (через запятую)"),
        ("en-GB,en;q=0.9", "status must be open, closed or both (comma-separated)"),
    ],
)
async def test_a_refusal_is_described_in_the_language_asked_for(
    issues: IssuesServer, accept_language: str | None, says: str
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    async with httpx.AsyncClient(base_url=f"{issues.url}/open311/v2", headers=headers) as http:
        response = await http.get("/requests.json", params={"status": "pending"})
    assert response.status_code == 400
    assert response.json() == [{"code": 400, "description": says}]


# ───────────────────────── POST requests ─────────────────────────

CREATE_KEY = """mutation($name: String!) {
  createOpen311Key(name: $name) { apiKey partner { id name revokedAt } }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeOpen311Key(id: $id) { id revokedAt } }"
READ_BACK = """query($id: ID!) {
  issue(id: $id) { id title status photos reporter { id } reportedVia reporterContact { email phone name } }
}"""
FORM = "application/x-www-form-urlencoded"


async def new_key(issues: IssuesServer, name: str = "Городской портал") -> tuple[str, str]:
    issued = (await issues.person("ADMIN").client.data(CREATE_KEY, {"name": name}))[
        "createOpen311Key"
    ]
    return issued["apiKey"], issued["partner"]["id"]


async def post(issues: IssuesServer, fields: dict[str, str], fmt: str = "json") -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{issues.url}/open311/v2", headers=ENGLISH) as http:
        return await http.post(f"/requests.{fmt}", data=fields)


def pothole(api_key: str, **extra: str) -> dict[str, str]:
    return {
        "api_key": api_key,
        "jurisdiction_id": "veche.local",
        "service_code": "potholes",
        "lat": "54.5293",
        "long": "36.2754",
        "address_string": "ул. Ленина, 5",
        "description": "Яма во дворе\nГлубокая, у второго подъезда.",
        "media_url": "https://partner.example.org/p/1.jpg",
        "email": "ivan@example.ru",
        "phone": "+79001234567",
        "first_name": "Иван",
        "last_name": "Петров",
        **extra,
    }


async def test_a_partner_files_an_anonymous_report(issues: IssuesServer, amqp_url: str) -> None:
    key, _ = await new_key(issues)
    async with bound_queue(amqp_url, issues.settings.namespace, "issue.reported") as queue:
        response = await post(issues, pothole(key))
        assert response.status_code == 200, response.text
        (created,) = response.json()
        issue_id = created["service_request_id"]
        reported: list[dict[str, Any]] = []

        async def arrived() -> bool:
            reported.extend(e for e in await take(queue) if e["data"]["issue_id"] == issue_id)
            return bool(reported)

        await eventually(arrived)
    assert reported[0]["data"]["reporter_id"] is None  # no account: no points, no one notified

    official = issues.official("roads")
    issue = (await official.client.data(READ_BACK, {"id": issue_id}))["issue"]
    assert issue == {
        "id": issue_id,
        "title": "Яма во дворе",
        "status": "NEW",
        "photos": ["https://partner.example.org/p/1.jpg"],
        "reporter": None,
        "reportedVia": "Городской портал",
        "reporterContact": None,  # no consent: the partner's contact fields were dropped
    }
    (request,) = (await get(issues, f"/requests/{issue_id}.json")).json()
    assert request["address"] == "ул. Ленина, 5"
    assert request["media_url"] == "https://partner.example.org/p/1.jpg"


async def test_with_consent_only_the_department_reads_the_contact(issues: IssuesServer) -> None:
    key, _ = await new_key(issues)
    (created,) = (await post(issues, pothole(key, consent="true"))).json()
    issue_id = created["service_request_id"]
    official = issues.official("roads")
    contact = (await official.client.data(READ_BACK, {"id": issue_id}))["issue"]["reporterContact"]
    assert contact == {"email": "ivan@example.ru", "phone": "+79001234567", "name": "Иван Петров"}

    body = await issues.citizen().client.post(READ_BACK, {"id": issue_id})
    assert body["data"]["issue"]["reporterContact"] is None
    assert body["data"]["issue"]["title"] == "Яма во дворе"  # the rest of the issue stays
    (error,) = body["errors"]
    assert error["path"] == ["issue", "reporterContact"]
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_keys_are_for_admins_and_can_be_revoked(issues: IssuesServer) -> None:
    refused = await issues.official("roads").client.error_code(CREATE_KEY, {"name": "Я сам"})
    assert refused == "FORBIDDEN"
    key, partner_id = await new_key(issues, "Бывший партнёр")
    assert (await post(issues, pothole(key))).status_code == 200
    admin = issues.person("ADMIN")
    revoked = (await admin.client.data(REVOKE_KEY, {"id": partner_id}))["revokeOpen311Key"]
    assert revoked["revokedAt"] is not None
    after = await post(issues, pothole(key))
    assert after.status_code == 403
    assert "not valid" in after.json()[0]["description"]
    listed = (await admin.client.data("{ open311Partners { id revokedAt } }"))["open311Partners"]
    assert {"id": partner_id, "revokedAt": revoked["revokedAt"]} in listed


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"api_key": ""}, 400, "api_key is required"),
        ({"api_key": "not-a-key"}, 403, "not valid"),
        ({"service_code": ""}, 400, "service_code is required"),
        ({"service_code": "dragons"}, 400, "dragons"),
        ({"lat": ""}, 400, "lat and long are required"),
        ({"lat": "95"}, 400, "Latitude must be between -90 and 90"),
        ({"description": " "}, 400, "description is required"),
        ({"description": "x" * 6000}, 400, "description"),
        ({"media_url": "ftp://x/1.jpg"}, 400, "http"),
        ({"jurisdiction_id": "moscow.ru"}, 404, "not served here"),
    ],
)
async def test_a_bad_report_is_refused_in_open311_shape(
    issues: IssuesServer, change: dict[str, str], status: int, says: str
) -> None:
    key, _ = await new_key(issues)
    fields = {**pothole(key), **change}
    if fields["api_key"] == "":
        del fields["api_key"]
    response = await post(issues, fields)
    assert response.status_code == status, response.text
    (error,) = response.json()
    assert error["code"] == status
    assert says in error["description"], error


async def test_a_form_that_is_not_one_is_refused(issues: IssuesServer) -> None:
    async with httpx.AsyncClient(base_url=f"{issues.url}/open311/v2", headers=ENGLISH) as http:
        as_json = await http.post("/requests.json", json={"api_key": "k"})
        too_big = await http.post(
            "/requests.json", content=b"a=" + b"x" * 70_000, headers={"Content-Type": FORM}
        )
    assert as_json.status_code == 400
    assert "x-www-form-urlencoded" in as_json.json()[0]["description"]
    assert too_big.status_code == 413


async def test_a_partner_key_files_at_most_its_hourly_allowance(issues: IssuesServer) -> None:
    key, partner_id = await new_key(issues)
    allowance = issues.settings.open311_reports_per_partner_hour
    # Spend all but one of this hour's allowance directly, as many reports would.
    window = Window(allowance, 3600, "spent", "исчерпано")
    for _ in range(allowance - 1):
        await issues.service.limits.hit("open311-partner", partner_id, window)
    assert (await post(issues, pothole(key))).status_code == 200
    refused = await post(issues, pothole(key))
    assert refused.status_code == 429
    assert "hourly allowance" in refused.json()[0]["description"]
    other, _ = await new_key(issues, "Другой партнёр")
    assert (await post(issues, pothole(other))).status_code == 200  # per key, not global
