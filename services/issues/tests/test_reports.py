"""Reporting problems, bad input, geo queries, text search and stable pages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from veche_issues.domain import distance_meters
from veche_kit.reference import CATEGORIES as DEMO_CATEGORIES

from .conftest import REPORT, IssuesServer

ISSUES = """
query($filter: IssueFilter, $first: Int, $after: String) {
  issues(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id title location { lat lon } } }
  }
}"""
SIMILAR = """
query($category: String!, $near: GeoPointInput!, $radius: Int) {
  similarIssues(category: $category, near: $near, radiusMeters: $radius) { id status }
}"""
CATEGORIES = "{ issueCategories { id name department { id } } }"

# A quiet corner far from the other tests' issues, so geo results are exact.
ORIGIN = (54.60, 36.50)


def _at(north_m: float, east_m: float) -> dict[str, float]:
    """A point `north_m` metres north and `east_m` metres east of ORIGIN."""
    lat = ORIGIN[0] + north_m / 111_320
    lon = ORIGIN[1] + east_m / (111_320 * 0.5793)  # cos(54.6°)
    return {"lat": round(lat, 7), "lon": round(lon, 7)}


async def test_report_issue_routes_and_starts_new(issues: IssuesServer) -> None:
    reporter = issues.citizen(district="moskovsky")
    issue = await issues.report(
        reporter,
        category="street-lighting",
        photos=["https://img.example/1.jpg", "http://img.example/2.png"],
    )
    assert issue["kind"] == "PROBLEM"
    assert issue["status"] == "NEW"
    assert issue["department"] == {"id": "housing"}
    assert issue["district"] == {"id": "moskovsky"}  # the reporter's own, by default
    assert issue["reporter"] == {"id": reporter.id}
    assert issue["location"] == {"lat": 54.5293, "lon": 36.2754}
    assert issue["photos"] == ["https://img.example/1.jpg", "http://img.example/2.png"]
    assert issue["supportersCount"] == 0
    assert issue["supportThreshold"] is None
    assert issue["dueAt"] is None
    assert issue["overdue"] is False


async def test_issue_categories_name_their_department(issues: IssuesServer) -> None:
    categories = (await issues.client.data(CATEGORIES))["issueCategories"]
    by_id = {c["id"]: c for c in categories}
    assert by_id["potholes"]["department"] == {"id": "roads"}
    assert by_id["waste"] == {
        "id": "waste",
        "name": "Мусор и свалки",
        "department": {"id": "ecology"},
    }
    # The demo city's categories, and any an admin added (test_catalogue adds some).
    assert {c.id for c in DEMO_CATEGORIES} <= set(by_id)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"location": {"lat": 91.0, "lon": 36.0}}, "location.lat"),
        ({"location": {"lat": 54.0, "lon": -180.5}}, "location.lon"),
        ({"category": "unicorns"}, "category"),
        ({"districtId": "atlantis"}, "districtId"),
        ({"title": "я" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"description": "x" * 5001}, "description"),
        ({"address": "x" * 301}, "address"),
        ({"photos": [f"https://img.example/{i}.jpg" for i in range(11)]}, "photos"),
        ({"photos": ["https://img.example/1.jpg", "ftp://img.example/2.jpg"]}, "photos.1"),
    ],
)
async def test_bad_reports_say_which_field(
    issues: IssuesServer, fields: dict[str, Any], field: str
) -> None:
    payload = {
        "title": "Яма",
        "description": "Яма у дома.",
        "category": "potholes",
        "location": {"lat": 54.5, "lon": 36.2},
        **fields,
    }
    body = await issues.citizen().client.post(REPORT, {"input": payload})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert body["data"] is None


async def test_signed_out_and_unknown_issue(issues: IssuesServer) -> None:
    payload = {
        "title": "Яма",
        "description": "Яма.",
        "category": "potholes",
        "location": {"lat": 54.5, "lon": 36.2},
    }
    assert await issues.client.error_code(REPORT, {"input": payload}) == "UNAUTHENTICATED"
    code = await issues.citizen().client.error_code('mutation { supportIssue(id: "nope") { id } }')
    assert code == "NOT_FOUND"
    assert (await issues.client.data('{ issue(id: "nope") { id } }'))["issue"] is None


async def test_near_lists_nearest_first_and_pages_stay_stable(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    tag = uuid.uuid4().hex[:6]
    offsets = [(300, 0), (100, 0), (0, 250), (-50, 0), (0, -700), (1500, 0)]
    ids: dict[tuple[int, int], str] = {}
    for north, east in offsets:
        issue = await issues.report(reporter, title=f"near-{tag}", location=_at(north, east))
        ids[(north, east)] = issue["id"]
    expected = [ids[o] for o in sorted(offsets[:5], key=lambda o: abs(o[0]) + abs(o[1]))]
    near = {"lat": ORIGIN[0], "lon": ORIGIN[1], "radiusMeters": 1000}

    first = (await issues.client.data(ISSUES, {"filter": {"near": near}, "first": 2}))["issues"]
    assert first["totalCount"] == 5  # the one 1.5 km away is outside
    assert [e["node"]["id"] for e in first["edges"]] == expected[:2]
    assert first["pageInfo"]["hasNextPage"] is True
    # A new issue nearer than the cursor arrives: later pages neither repeat nor skip.
    await issues.report(reporter, title=f"near-{tag}", location=_at(10, 0))
    rest: list[str] = []
    after = first["pageInfo"]["endCursor"]
    while after:
        page = (
            await issues.client.data(ISSUES, {"filter": {"near": near}, "first": 2, "after": after})
        )["issues"]
        rest += [e["node"]["id"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    assert rest == expected[2:]
    # Distances really grow.
    all_nodes = (await issues.client.data(ISSUES, {"filter": {"near": near}, "first": 10}))[
        "issues"
    ]
    distances = [
        distance_meters(
            ORIGIN[0], ORIGIN[1], e["node"]["location"]["lat"], e["node"]["location"]["lon"]
        )
        for e in all_nodes["edges"]
    ]
    assert distances == sorted(distances)
    assert len(distances) == 6


async def test_similar_issues_are_open_of_the_category_nearest_first(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    origin = (54.70, 36.60)
    spot = {"lat": origin[0], "lon": origin[1]}
    far = await issues.report(
        reporter, category="waste", location={"lat": origin[0] + 0.003, "lon": origin[1]}
    )
    close = await issues.report(
        reporter, category="waste", location={"lat": origin[0] + 0.001, "lon": origin[1]}
    )
    other_category = await issues.report(reporter, category="potholes", location=spot)
    rejected = await issues.report(reporter, category="waste", location=spot)
    await issues.moderator().client.data(
        'mutation($id: ID!) { changeIssueStatus(id: $id, status: REJECTED, note: "Дубль") { id } }',
        {"id": rejected["id"]},
    )
    found = (await issues.client.data(SIMILAR, {"category": "waste", "near": spot, "radius": 500}))[
        "similarIssues"
    ]
    assert [i["id"] for i in found] == [close["id"], far["id"]]
    assert other_category["id"] not in [i["id"] for i in found]
    narrow = (
        await issues.client.data(SIMILAR, {"category": "waste", "near": spot, "radius": 200})
    )["similarIssues"]
    assert [i["id"] for i in narrow] == [close["id"]]
    body = await issues.client.post(
        SIMILAR, {"category": "waste", "near": {"lat": 100, "lon": 0}, "radius": 200}
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "near.lat"}


async def test_text_search_folds_case_yo_and_endings(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    tag = uuid.uuid4().hex[:8]
    tree = await issues.report(reporter, title=f"Ёлка {tag} упала", category="trees")
    road = await issues.report(reporter, title=f"Дорога {tag} разбита")
    english = await issues.report(
        reporter, title=f"Broken lights {tag}", category="street-lighting"
    )

    async def search(text: str) -> list[str]:
        data = await issues.client.data(ISSUES, {"filter": {"text": f"{text} {tag}"}, "first": 10})
        return [e["node"]["id"] for e in data["issues"]["edges"]]

    assert await search("Ёлка") == [tree["id"]]
    assert await search("елка") == [tree["id"]]
    assert await search("ЁЛКИ") == [tree["id"]]
    assert await search("Дорога") == [road["id"]]
    assert await search("дороги") == [road["id"]]
    assert await search("дор") == [road["id"]]  # a word's beginning is enough
    assert await search("light") == [english["id"]]
    assert await search("lighting") == [english["id"]]
    assert await search("мост") == []
    combined = await issues.client.data(
        ISSUES, {"filter": {"text": tag, "category": "potholes"}, "first": 10}
    )
    assert [e["node"]["id"] for e in combined["issues"]["edges"]] == [road["id"]]


async def test_short_russian_nouns_are_found_whatever_their_ending(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    tag = uuid.uuid4().hex[:8]
    yard = await issues.report(reporter, title=f"Ямы во дворе {tag}")
    street = await issues.report(reporter, title=f"Яма на Кирова {tag}")

    async def search(text: str) -> set[str]:
        data = await issues.client.data(ISSUES, {"filter": {"text": f"{text} {tag}"}, "first": 10})
        return {e["node"]["id"] for e in data["issues"]["edges"]}

    for query in ("яма", "ямы", "ям", "Ямой"):
        assert await search(query) == {yard["id"], street["id"]}, query
    assert await search("двор") == {yard["id"]}


async def test_newest_first_pages_ignore_new_arrivals(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    tag = uuid.uuid4().hex[:8]
    made = [(await issues.report(reporter, title=f"page {tag} {i}"))["id"] for i in range(5)]
    variables: dict[str, Any] = {"filter": {"text": tag}, "first": 2}
    page = (await issues.client.data(ISSUES, variables))["issues"]
    seen = [e["node"]["id"] for e in page["edges"]]
    await issues.report(reporter, title=f"page {tag} late")
    while page["pageInfo"]["hasNextPage"]:
        variables["after"] = page["pageInfo"]["endCursor"]
        page = (await issues.client.data(ISSUES, variables))["issues"]
        seen += [e["node"]["id"] for e in page["edges"]]
    assert seen == list(reversed(made))
    body = await issues.client.post(ISSUES, {"first": 2, "after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await issues.client.post(ISSUES, {"first": 500})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
