"""An issue's lists are bounded: `solverOffers(first:)` and `history(last:)`, refused
above their maximum; and an offer's status is an enum."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType

from veche_issues import domain
from veche_issues.schema import schema
from veche_kit import mongo
from veche_kit.clock import utcnow

from .conftest import IssuesServer

OFFERS = """
query($id: ID!, $first: Int) { issue(id: $id) { solverOffers(first: $first) { id status } } }"""
HISTORY = """
query($id: ID!, $last: Int) { issue(id: $id) { history(last: $last) { from to note } } }"""
PLAIN = "query($id: ID!) { issue(id: $id) { solverOffers { id } history { note } } }"


async def _issue_with_many(issues: IssuesServer, offers: int, steps: int) -> tuple[str, list[str]]:
    """An issue with `offers` solver offers (oldest first) and `steps` history entries."""
    now = utcnow()
    history = [
        domain.history_entry(
            domain.Status.RESOLVED, domain.Status.IN_PROGRESS, None, f"step {n}", now
        )
        for n in range(steps)
    ]
    issue_id = await issues.seed_issue(
        status="IN_PROGRESS", reporter=issues.citizen().id, history=history
    )
    made: list[dict[str, Any]] = [
        {
            "_id": mongo.new_id(),
            "issue_id": issue_id,
            "solver_id": f"solver-{n}",
            "message": f"offer {n}",
            "status": "PENDING" if n else "DECLINED",
            "at": now + timedelta(seconds=n),
        }
        for n in range(offers)
    ]
    if made:
        await issues.service.db["solver_offers"].insert_many(made)
    return issue_id, sorted(str(o["_id"]) for o in made)


async def _refused(issues: IssuesServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await issues.client.post(query, variables)
    assert body["data"] == {"issue": None}, body
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return extensions


async def test_solver_offers_are_bounded_by_first(issues: IssuesServer) -> None:
    issue_id, offers = await _issue_with_many(issues, domain.DEFAULT_OFFERS + 5, 0)
    listed = (await issues.client.data(OFFERS, {"id": issue_id}))["issue"]["solverOffers"]
    assert [o["id"] for o in listed] == offers[: domain.DEFAULT_OFFERS]
    assert listed[0]["status"] == "DECLINED"
    two = (await issues.client.data(OFFERS, {"id": issue_id, "first": 2}))["issue"]
    assert [o["id"] for o in two["solverOffers"]] == offers[:2]
    everything = {"id": issue_id, "first": domain.MAX_OFFERS}
    assert len((await issues.client.data(OFFERS, everything))["issue"]["solverOffers"]) == 25
    for wrong in (0, domain.MAX_OFFERS + 1):
        refused = await _refused(issues, OFFERS, {"id": issue_id, "first": wrong})
        assert refused == {"code": "BAD_USER_INPUT", "field": "first"}


async def test_history_keeps_its_latest_steps_within_last(issues: IssuesServer) -> None:
    steps = domain.DEFAULT_HISTORY + 10
    issue_id, _ = await _issue_with_many(issues, 0, steps)
    listed = (await issues.client.data(HISTORY, {"id": issue_id}))["issue"]["history"]
    assert [h["note"] for h in listed] == [f"step {n}" for n in range(10, steps)]
    three = (await issues.client.data(HISTORY, {"id": issue_id, "last": 3}))["issue"]["history"]
    assert [h["note"] for h in three] == [f"step {n}" for n in range(steps - 3, steps)]
    for wrong in (0, domain.MAX_HISTORY + 1):
        refused = await _refused(issues, HISTORY, {"id": issue_id, "last": wrong})
        assert refused == {"code": "BAD_USER_INPUT", "field": "last"}
    # Queries without the arguments work as before.
    plain = (await issues.client.data(PLAIN, {"id": issue_id}))["issue"]
    assert (len(plain["solverOffers"]), len(plain["history"])) == (0, domain.DEFAULT_HISTORY)


def test_offer_status_is_an_enum_clients_must_let_grow() -> None:
    offer = schema._schema.type_map["SolverOffer"]
    assert isinstance(offer, GraphQLObjectType)
    status = offer.fields["status"].type
    assert isinstance(status, GraphQLNonNull)
    assert isinstance(status.of_type, GraphQLEnumType)
    assert status.of_type.name == "OfferStatus"  # as in api.graphql
    assert list(status.of_type.values) == ["PENDING", "ACCEPTED", "DECLINED"]
    assert "tolerate values added later" in (status.of_type.description or "")
