"""Query planning, from SDL text (no HTTP): fetch documents, variables, order, batching."""

from __future__ import annotations

from typing import Any

from graphql import OperationDefinitionNode, get_operation_ast, parse
from graphql.execution.values import get_variable_values

from veche_gateway.compose import compose
from veche_gateway.plan import EntityFetch, EntityGroup, QueryPlan, RootFetch, build_plan
from veche_gateway.subgraph import load_subgraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.11", '
    'import: ["@key", "@shareable"])\n'
)
# users knows User by id and by email; reviews only by email (multiple keys)
USERS = (
    LINK
    + """
type User @key(fields: "id") @key(fields: "email") { id: ID! email: String! name: String! }
type Query { user(id: ID!): User me: User }
type Mutation { rename(name: String!): User! }
"""
)
REVIEWS = (
    LINK
    + """
type User @key(fields: "email") { email: String! reviews(first: Int): [Review!]! }
type Review { body: String! author: User! }
type Query { latestReviews: [Review!]! }
type Mutation { review(body: String!): Review! }
"""
)
SUPERGRAPH = compose(
    [
        load_subgraph("users", "http://users", USERS),
        load_subgraph("reviews", "http://reviews", REVIEWS),
    ]
)
BY_EMAIL = {"User": (("_veche_k_email", "email"),)}


def _plan(query: str, variables: dict[str, Any] | None = None) -> QueryPlan:
    document = parse(query)
    operation = get_operation_ast(document, None)
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(
        SUPERGRAPH.schema, operation.variable_definitions or (), variables or {}
    )
    assert not isinstance(values, list)
    return build_plan(SUPERGRAPH, document, operation, values)


def test_a_fetch_declares_only_the_variables_it_uses() -> None:
    plan = _plan(
        "query Q($id: ID!, $n: Int) { user(id: $id) { name reviews(first: $n) { body } } }",
        {"id": "1"},
    )
    (stage,) = plan.stages
    assert stage.roots == (
        RootFetch(
            "users",
            "query Q__users($id:ID!){user(id:$id){_veche_t:__typename name _veche_k_email:email}}",
            ("id",),
            ("user",),
        ),
    )
    assert stage.steps == (
        (
            EntityFetch(
                "reviews",
                "query Q__reviews_1($_veche_reps0:[_Any!]!$n:Int){e0:_entities("
                "representations:$_veche_reps0){...on User{_veche_t:__typename "
                "reviews(first:$n){_veche_t:__typename body}}}}",
                ("n",),
                (EntityGroup("e0", (("user", "Query"),), BY_EMAIL, {"User": ("reviews",)}),),
            ),
        ),
    )


def test_mutations_are_split_into_ordered_stages() -> None:
    plan = _plan(
        'mutation { a: rename(name: "x") { id } b: rename(name: "y") { id } '
        'c: review(body: "z") { author { name } } d: rename(name: "w") { id } }'
    )
    assert [[(r.subgraph, r.response_keys) for r in s.roots] for s in plan.stages] == [
        [("users", ("a", "b"))],
        [("reviews", ("c",))],
        [("users", ("d",))],
    ]
    # c's author is fetched within c's stage, before d runs
    assert [[[f.subgraph for f in step] for step in s.steps] for s in plan.stages] == [
        [],
        [["users"]],
        [],
    ]


def test_query_roots_are_grouped_per_subgraph() -> None:
    plan = _plan("{ me { id } latestReviews { body } user(id: 1) { name } }")
    (stage,) = plan.stages
    assert [(r.subgraph, r.response_keys) for r in stage.roots] == [
        ("users", ("me", "user")),
        ("reviews", ("latestReviews",)),
    ]


def test_entity_fetches_are_batched_per_subgraph_and_depth() -> None:
    plan = _plan("{ latestReviews { author { name } } a: latestReviews { author { id } } }")
    ((step,),) = (s.steps for s in plan.stages)
    (fetch,) = step
    assert fetch.subgraph == "users"
    assert fetch.groups == (
        EntityGroup(
            "e0", (("latestReviews", "Query"), ("author", "Review")), BY_EMAIL, {"User": ("name",)}
        ),
        EntityGroup("e1", (("a", "Query"), ("author", "Review")), BY_EMAIL, {"User": ("id",)}),
    )
    assert fetch.document == (
        "query anonymous__users_1($_veche_reps0:[_Any!]!$_veche_reps1:[_Any!]!)"
        "{e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename name}}"
        "e1:_entities(representations:$_veche_reps1){...on User{_veche_t:__typename id}}}"
    )


def test_skip_and_include_are_decided_while_planning() -> None:
    query = "query($s: Boolean!) { me { name @skip(if: $s) reviews @include(if: $s) { body } } }"
    (skipped,) = _plan(query, {"s": True}).stages
    assert skipped.roots[0].document == (
        "query anonymous__users{me{_veche_t:__typename _veche_k_email:email}}"
    )
    assert len(skipped.steps) == 1
    (kept,) = _plan(query, {"s": False}).stages
    assert kept.roots[0].document == "query anonymous__users{me{_veche_t:__typename name}}"
    assert kept.steps == ()


RATINGS = (
    LINK
    + """
type User @key(fields: "id") { id: ID! rating: Int }
type Query { topRating: Int }
"""
)


def test_a_key_the_parent_lacks_is_fetched_from_a_helper_subgraph_first() -> None:
    # reviews knows authors by email, ratings by id: users converts one to the other
    supergraph = compose(
        [
            load_subgraph("users", "http://users", USERS),
            load_subgraph("reviews", "http://reviews", REVIEWS),
            load_subgraph("ratings", "http://ratings", RATINGS),
        ]
    )
    document = parse("{ latestReviews { author { rating } } }")
    operation = get_operation_ast(document, None)
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(supergraph.schema, (), {})
    assert not isinstance(values, list)
    (stage,) = build_plan(supergraph, document, operation, values).stages
    path = (("latestReviews", "Query"), ("author", "Review"))
    assert stage.steps == (
        (
            EntityFetch(
                "users",
                "query anonymous__users_1($_veche_reps0:[_Any!]!){e0:_entities("
                "representations:$_veche_reps0){...on User{_veche_t:__typename "
                "_veche_k_id:id}}}",
                (),
                # only the planner's own key alias: no client field of its own here
                (EntityGroup("e0", path, BY_EMAIL, {"User": ()}),),
            ),
        ),
        (
            EntityFetch(
                "ratings",
                "query anonymous__ratings_2($_veche_reps0:[_Any!]!){e0:_entities("
                "representations:$_veche_reps0){...on User{_veche_t:__typename rating}}}",
                (),
                (
                    EntityGroup(
                        "e0", path, {"User": (("_veche_k_id", "id"),)}, {"User": ("rating",)}
                    ),
                ),
            ),
        ),
    )


def test_subgraph_names_become_valid_operation_names() -> None:
    supergraph = compose([load_subgraph("users-v2.eu", "http://users", USERS)])
    document = parse("query Me { me { name } }")
    operation = get_operation_ast(document, None)
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(supergraph.schema, (), {})
    assert not isinstance(values, list)
    (stage,) = build_plan(supergraph, document, operation, values).stages
    assert stage.roots[0].document == "query Me__users_v2_eu{me{_veche_t:__typename name}}"
