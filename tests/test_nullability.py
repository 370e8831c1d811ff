"""An outage of one service costs only its own fields (api.graphql, nullability).

The rules are derived from the supergraph the gateway composes from the three
services' schemas, not from a list of field names, so a field added later is
held to them too:

- every `Query` field is nullable (one service down never makes `data: null`);
- an entity's *owner* is the one subgraph that resolves its non-null fields
  besides the key; any other subgraph's fields on it are nullable (a field one
  service adds to another's entity), so there is exactly one owner;
- a field whose object needs non-null fields from another subgraph is
  nullable (a reference such as `Poll.author: User`, or a stub such as
  `DistrictResult.district: District` whose name comes from users).
"""

from __future__ import annotations

from graphql import GraphQLObjectType, get_named_type, is_non_null_type

from veche_gateway.compose import compose
from veche_gateway.subgraph import load_subgraph
from veche_gateway.supergraph import Supergraph
from veche_issues.schema import schema as issues_schema
from veche_polls.schema import schema as polls_schema
from veche_users.schema import schema as users_schema

ROOT_NULLABLE = ("Query",)  # the contract keeps mutations' results non-null


def _supergraph(sdls: dict[str, str]) -> Supergraph:
    return compose(
        [load_subgraph(name, f"http://{name}/graphql", sdl) for name, sdl in sdls.items()]
    )


def _objects(supergraph: Supergraph) -> list[GraphQLObjectType]:
    return [
        t
        for name, t in supergraph.schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    ]


def _key_fields(supergraph: Supergraph, type_name: str) -> set[str]:
    names: set[str] = set()
    for subgraph in supergraph.subgraphs.values():
        names |= subgraph.key_field_names(type_name)
    return names


def owners(supergraph: Supergraph) -> dict[str, set[str]]:
    """Entity type -> the subgraphs resolving its non-null, non-key fields."""
    found: dict[str, set[str]] = {}
    for type_ in _objects(supergraph):
        keys = _key_fields(supergraph, type_.name)
        if not keys:
            continue  # not an entity
        found[type_.name] = {
            subgraph
            for name, field in type_.fields.items()
            if name not in keys and is_non_null_type(field.type)
            for subgraph in supergraph.field_resolvers(type_.name, name)
        }
    return found


def nullability_faults(supergraph: Supergraph) -> list[str]:
    """Every field that would let one subgraph's outage null another's data."""
    faults: list[str] = []
    entity_owners = owners(supergraph)
    for type_name, found in sorted(entity_owners.items()):
        if len(found) > 1:
            faults.append(
                f"{type_name} has non-null fields from {', '.join(sorted(found))}: "
                "a field one subgraph adds to another's entity must be nullable"
            )
    for type_ in _objects(supergraph):
        for name, field in type_.fields.items():
            if not is_non_null_type(field.type):
                continue
            where = f"{type_.name}.{name}: {field.type}"
            if type_.name in ROOT_NULLABLE:
                faults.append(f"{where} is a root field and must be nullable")
                continue
            target = supergraph.schema.type_map[get_named_type(field.type).name]
            if not isinstance(target, GraphQLObjectType):
                continue
            for subgraph in supergraph.field_resolvers(type_.name, name):
                elsewhere = sorted(
                    f
                    for f, inner in target.fields.items()
                    if is_non_null_type(inner.type)
                    and subgraph not in supergraph.field_resolvers(target.name, f)
                )
                if elsewhere:
                    faults.append(
                        f"{where} (from {subgraph}) references {target.name}, whose non-null "
                        f"{', '.join(elsewhere)} only other subgraphs resolve: it must be nullable"
                    )
    return faults


def test_an_outage_costs_only_the_fields_of_the_service_that_is_down() -> None:
    supergraph = _supergraph(
        {
            "users": users_schema.as_str(),
            "polls": polls_schema.as_str(),
            "issues": issues_schema.as_str(),
        }
    )
    assert nullability_faults(supergraph) == []
    # the rules had something to hold: the entities, each with one owner
    assert {t: sorted(o) for t, o in owners(supergraph).items()} == {
        "Department": ["users"],
        "District": ["users"],
        "Issue": ["issues"],
        "PersonalData": ["users"],
        "Poll": ["polls"],
        "User": ["users"],
    }


USERS = """
type User @key(fields: "id") { id: ID! name: String! }
type District @key(fields: "id") { id: ID! name: String! }
type Query { me: User }
"""

# each kind of field the rules forbid, once
OFFENDING = """
type User @key(fields: "id") { id: ID! ballots: [String!]! }
type District @key(fields: "id", resolvable: false) { id: ID! }
type Result { district: District! }
type Poll @key(fields: "id") { id: ID! title: String! author: User! result: Result }
type Query { polls: [Poll!]! }
"""


def test_the_rules_catch_each_kind_of_offending_field() -> None:
    supergraph = _supergraph({"users": USERS, "polls": OFFENDING})
    assert sorted(nullability_faults(supergraph)) == [
        "Poll.author: User! (from polls) references User, whose non-null name only other "
        "subgraphs resolve: it must be nullable",
        "Query.polls: [Poll!]! is a root field and must be nullable",
        "Result.district: District! (from polls) references District, whose non-null name "
        "only other subgraphs resolve: it must be nullable",
        "User has non-null fields from polls, users: "
        "a field one subgraph adds to another's entity must be nullable",
    ]
