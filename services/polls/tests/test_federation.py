"""The subgraph's federation surface: entities, `Issue.poll` from initiatives, composition."""

from __future__ import annotations

import uuid

from graphql import (
    GraphQLObjectType,
)

from veche_gateway.compose import compose
from veche_gateway.subgraph import load_subgraph
from veche_kit.events import Envelope, InitiativeThresholdReached
from veche_polls import store
from veche_stack.testing import eventually, publish
from veche_users.schema import schema as users_schema

from .conftest import PUBLISH, PollsServer

SDL = "{ _service { sdl } }"
ISSUE_POLL = """query($issue: _Any!) {
  _entities(representations: [$issue]) {
    ... on Issue { id poll { id title status sourceInitiative { id } department { id } author { id }
                             questions { text options { text } } audience { districtIds } } }
  }
}"""
POLL_ENTITY = (
    """query($poll: _Any!) { _entities(representations: [$poll]) { ... on Poll { id title } } }"""
)


def _initiative(issue_id: str) -> InitiativeThresholdReached:
    return InitiativeThresholdReached(
        issue_id=issue_id,
        title="Велодорожка вдоль Оки",
        description="Сделать велодорожку от моста до парка.",
        category="roads-and-paths",
        author_id="u-initiator",
        department_id="roads",
        district_id="leninsky",
        supporters_count=500,
        support_threshold=500,
    )


async def test_a_draft_poll_from_an_initiative_is_created_once(polls: PollsServer) -> None:
    issue_id = f"i-{uuid.uuid4().hex[:10]}"
    first = Envelope.wrap(_initiative(issue_id), "issues")
    again = Envelope.wrap(_initiative(issue_id), "issues")  # the event raised a second time
    # Three deliveries: one event twice (a redelivery) and a second event for the same initiative.
    await publish(polls.settings.amqp_url, polls.settings.namespace, first, first, again)

    async def both_handled() -> bool:
        done = await polls.db["processed_events"].count_documents(
            {"_id": {"$in": [str(first.id), str(again.id)]}}
        )
        return done == 2

    await eventually(both_handled)
    assert await polls.db[store.POLLS].count_documents({"source_initiative_id": issue_id}) == 1

    issue = {"__typename": "Issue", "id": issue_id}
    official = polls.official("roads")
    found = (await official.data(ISSUE_POLL, {"issue": issue}))["_entities"][0]["poll"]
    assert found["status"] == "DRAFT"
    assert found["title"] == "«Велодорожка вдоль Оки»"
    assert found["sourceInitiative"] == {"id": issue_id}
    assert found["department"] == {"id": "roads"}
    assert found["author"] == {"id": "u-initiator"}
    assert found["audience"] == {"districtIds": ["leninsky"]}
    assert [o["text"] for o in found["questions"][0]["options"]] == [
        "Поддерживаю",
        "Не поддерживаю",
        "Затрудняюсь ответить",
    ]
    # A draft is not shown to citizens; once published it is.
    assert (await polls.client.data(ISSUE_POLL, {"issue": issue}))["_entities"][0]["poll"] is None
    await official.data(PUBLISH, {"id": found["id"]})
    shown = (await polls.client.data(ISSUE_POLL, {"issue": issue}))["_entities"][0]["poll"]
    assert shown["id"] == found["id"]
    assert shown["status"] == "ACTIVE"
    other = {"__typename": "Issue", "id": "i-without-poll"}
    assert (await polls.client.data(ISSUE_POLL, {"issue": other}))["_entities"][0]["poll"] is None


async def test_poll_entities_resolve_by_id(polls: PollsServer) -> None:
    poll_id = await polls.active_poll()
    resolved = await polls.client.data(POLL_ENTITY, {"poll": {"__typename": "Poll", "id": poll_id}})
    assert resolved["_entities"] == [{"id": poll_id, "title": "Сквер на Кирова"}]


async def test_the_sdl_composes_with_the_users_subgraph(polls: PollsServer) -> None:
    polls_sdl = (await polls.client.data(SDL))["_service"]["sdl"]
    users = await users_schema.execute(SDL)
    assert users.data is not None
    supergraph = compose(
        [
            load_subgraph("users", "http://users/graphql", users.data["_service"]["sdl"]),
            load_subgraph("polls", "http://polls/graphql", polls_sdl),
        ]
    )
    user = supergraph.schema.get_type("User")
    poll = supergraph.schema.get_type("Poll")
    assert isinstance(user, GraphQLObjectType)
    assert isinstance(poll, GraphQLObjectType)
    assert {"displayName", "ballots"} <= set(user.fields)
    assert {"results", "author"} <= set(poll.fields)
    assert 'type District @key(fields: "id", resolvable: false)' in polls_sdl
    assert 'type Issue @key(fields: "id")' in polls_sdl
