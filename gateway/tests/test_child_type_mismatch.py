"""Fragments on different types selecting a same-named field of different types in
the subgraph (`id: ID!` on one, `id: ID` on another): the subgraph document stays
valid with an alias of the planner's, renamed back to the client's key."""

from __future__ import annotations

from textwrap import dedent

from graphql import parse, validate

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@shareable"])\n'
)
OFFICES = (
    LINK
    + """
union Contact = Citizen | Office
type Citizen @key(fields: "id") { id: ID! name: String contacts: [Contact!]! }
type Office { id: ID name: String @shareable contacts: [Contact!]! }
type Query { contacts: [Contact!]! }
"""
)
REGISTRY = LINK + "type Citizen { id: ID @shareable }\ntype Query { residents: [Citizen!]! }\n"
CITIZEN = {"__typename": "Citizen", "id": "c1", "name": "Ana"}
OFFICE = {"__typename": "Office", "id": "o1", "name": "Permits"}


def _lines(text: str) -> str:
    return dedent(text).strip()


async def test_a_field_of_another_type_under_the_same_key_is_aliased_and_renamed_back() -> None:
    offices = LocalSubgraph(
        "offices",
        OFFICES,
        root={
            "contacts": [
                {**CITIZEN, "contacts": [CITIZEN, OFFICE]},
                {**OFFICE, "contacts": [OFFICE]},
            ]
        },
    )
    registry = LocalSubgraph("registry", REGISTRY, root={"residents": [{"id": "c1"}]})
    gateway = await local_gateway(offices, registry)
    query = """
    { contacts {
        ... on Citizen { id name contacts { ... on Citizen { id } ... on Office { id } } }
        ... on Office { id name contacts { ... on Citizen { id } ... on Office { id } } }
    } }
    """
    plan = plan_text(gateway, query)
    assert plan == _lines(
        """
        QueryPlan {
          Fetch(service: "offices") {
            query anonymous__offices{contacts{_veche_t:__typename ...on Citizen{id name contacts{_veche_t:__typename ...on Citizen{id}...on Office{_veche_m_Office_id:id}}}...on Office{_veche_m_Office_id:id name contacts{_veche_t:__typename ...on Citizen{id}...on Office{_veche_m_Office_id:id}}}}}
            rename contacts.contacts._veche_m_Office_id -> id
            rename contacts._veche_m_Office_id -> id
            rename contacts.contacts._veche_m_Office_id -> id
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {
            "contacts": [
                {"id": "c1", "name": "Ana", "contacts": [{"id": "c1"}, {"id": "o1"}]},
                {"id": "o1", "name": "Permits", "contacts": [{"id": "o1"}]},
            ]
        }
    }
    # the document the subgraph got is valid against its own schema
    assert "_veche_m_Office_id" in offices.received[-1]
    assert not validate(offices.schema, parse(offices.received[-1]))
    await gateway.stop()


async def test_fields_of_one_type_under_one_key_are_left_as_they_are() -> None:
    offices = LocalSubgraph("offices", OFFICES, root={"contacts": [CITIZEN, OFFICE]})
    registry = LocalSubgraph("registry", REGISTRY)
    gateway = await local_gateway(offices, registry)
    query = "{ contacts { ... on Citizen { name } ... on Office { name } } }"
    assert "rename" not in plan_text(gateway, query)
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {"contacts": [{"name": "Ana"}, {"name": "Permits"}]}
    }
    await gateway.stop()
