"""Open311 GeoReport v2 through the gateway, as a partner's tool reaches it:
the `georeport` client (PyPI) lists the services and reads back a report a
citizen filed through GraphQL, in JSON and in XML, from the stack as
`make run` starts it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import requests
from georeport import GeoReport

from veche_stack.runner import Runner

pytestmark = pytest.mark.stack

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }"
REPORT = "mutation($i: ReportIssueInput!) { reportIssue(input: $i) { id } }"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = Runner(tmp_path_factory.mktemp("open311"))
    try:
        runner.start()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield runner
    runner.interrupt()


@pytest.fixture(scope="module")
def reported(stack: Runner) -> str:
    """A pothole a citizen reported through GraphQL; its id."""
    with httpx.Client(timeout=30) as http:
        person = {
            "email": f"open311-{uuid.uuid4().hex[:8]}@example.ru",
            "password": "open311 password 1",
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
    assert "not served here" in error["description"]
