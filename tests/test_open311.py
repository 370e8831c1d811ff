"""Open311 GeoReport v2 through the gateway, as a partner's tool reaches it:
the `georeport` client (PyPI) lists the services and reads back a report a
citizen filed through GraphQL, in JSON and in XML; a partner with a key the
admin issued files an anonymous report that the city then works on, from the
stack as `make run` starts it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import requests
from georeport import GeoReport

from veche_stack.runner import Runner
from veche_stack.testing import fresh_code

from .flows import ADMIN_PASSWORD, ADMIN_TOTP_SECRET, runner_on, running

pytestmark = pytest.mark.stack

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"
REPORT = "mutation($i: ReportIssueInput!) { reportIssue(input: $i) { id } }"
LOGIN = """mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, totp: $t) { accessToken }
}"""
CREATE_KEY = 'mutation { createOpen311Key(name: "Портал партнёра") { apiKey } }'
ACCEPT = """mutation($id: ID!) {
  changeIssueStatus(id: $id, status: ACCEPTED) { status reporter { id } reportedVia }
}"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("open311"))) as runner:
        yield runner


@pytest.fixture(scope="module")
def reported(stack: Runner) -> str:
    """A pothole a citizen reported through GraphQL; its id."""
    with httpx.Client(timeout=30) as http:
        person = {
            "email": f"open311-{uuid.uuid4().hex[:8]}@example.ru",
            "password": "open311 password 1",
            "consentVersion": "2026-12-01",  # veche_users.settings.DEFAULT_CONSENT_VERSION
            "displayName": "Горожанин",
            "districtId": "leninsky",
        }
        body = http.post(stack.url("gateway"), json={"query": REGISTER, "variables": {"i": person}})
        token = body.json()["data"]["register"]["accessToken"]
        report = {
            "title": "Яма у остановки",
            "description": "Глубокая яма на проезжей части.",
            "category": "potholes",
            "location": {"lat": 54.5293, "lon": 36.2754},
            "address": "ул. Кирова, 1",
        }
        answer = http.post(
            stack.url("gateway"),
            json={"query": REPORT, "variables": {"i": report}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    issue_id: str = answer["data"]["reportIssue"]["id"]
    return issue_id


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_georeport_reads_the_city_through_the_gateway(
    stack: Runner, reported: str, output_format: str
) -> None:
    city = GeoReport(
        stack.url("gateway", "/open311/v2"), jurisdiction="veche.local", output_format=output_format
    )
    services = city.get_service_list()
    potholes = next(s for s in services if s["service_code"] == "potholes")
    assert potholes["service_name"] == "Ямы на дорогах"
    assert potholes["group"] == "roads"
    assert city.get_service_definition("potholes")["service_code"] == "potholes"

    request = city.get_service_request(reported)
    assert request["service_request_id"] == reported
    assert request["status"] == "open"
    assert request["agency_responsible"] == "roads"
    assert request["address"] == "ул. Кирова, 1"
    assert float(request["lat"]) == 54.5293

    listed = city.get_service_requests(service_code="potholes", status="open")
    rows = listed if isinstance(listed, list) else [listed]  # xmltodict: one row is a dict
    assert reported in {row["service_request_id"] for row in rows}


def test_a_bad_request_is_refused_in_open311_shape_through_the_gateway(stack: Runner) -> None:
    city = GeoReport(stack.url("gateway", "/open311/v2"), jurisdiction="moscow.ru")
    with pytest.raises(requests.HTTPError) as refused:
        city.get_service_list()
    response = refused.value.response
    assert response is not None
    assert response.status_code == 404
    (error,) = response.json()
    assert error["code"] == 404
    # The client asks for no language: Russian, passed on and answered by the subgraph.
    assert "здесь не обслуживается" in error["description"]


def test_a_partner_report_through_the_gateway_is_worked_on_anonymously(stack: Runner) -> None:
    gateway = stack.url("gateway")
    with httpx.Client(timeout=30) as http:
        admin_sign_in = {"e": "admin@veche.local", "p": ADMIN_PASSWORD}
        login = {
            "query": LOGIN,
            "variables": {**admin_sign_in, "t": fresh_code(ADMIN_TOTP_SECRET, gateway)},
        }
        admin = {
            "Authorization": f"Bearer {http.post(gateway, json=login).json()['data']['login']['accessToken']}"
        }
        key = http.post(gateway, json={"query": CREATE_KEY}, headers=admin).json()
        form = {
            "api_key": key["data"]["createOpen311Key"]["apiKey"],
            "service_code": "street-lighting",
            "lat": "54.5138",
            "long": "36.2612",
            "description": "Не горит фонарь\nУ дома 12 третий день темно.",
        }
        filed = http.post(stack.url("gateway", "/open311/v2/requests.json"), data=form)
        assert filed.status_code == 200, filed.text
        request_id = filed.json()[0]["service_request_id"]
        accepted = http.post(
            gateway, json={"query": ACCEPT, "variables": {"id": request_id}}, headers=admin
        ).json()
        assert accepted["data"]["changeIssueStatus"] == {
            "status": "ACCEPTED",
            "reporter": None,
            "reportedVia": "Портал партнёра",
        }
        # The users service took the anonymous report's events in its stride.
        health = http.get(stack.url("users", "/health")).json()
        assert health.get("deadLetters", 0) == 0, health
    city = GeoReport(stack.url("gateway", "/open311/v2"))
    read = city.get_service_request(request_id)
    assert read["agency_responsible"] == "housing"
    assert read["expected_datetime"]  # accepted: the department's deadline runs
