"""Query planning, from SDL text (no HTTP): fetch documents, variables, order, batching."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from graphql import OperationDefinitionNode, get_operation_ast, parse
from graphql.execution.values import get_variable_values

from veche_gateway.compose import compose
from veche_gateway.normalize import normalize
from veche_gateway.plan import build_plan
from veche_gateway.plan_tree import print_plan
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


def _plan(query: str, variables: dict[str, Any] | None = None, supergraph: Any = None) -> str:
    supergraph = supergraph or SUPERGRAPH
    document = parse(query)
    operation = get_operation_ast(document, None)
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(
        supergraph.schema, operation.variable_definitions or (), variables or {}
    )
    assert not isinstance(values, list)
    return print_plan(
        build_plan(supergraph, normalize(supergraph.schema, document, operation, values))
    )


def _lines(text: str) -> str:
    return dedent(text).strip()


def test_a_fetch_declares_only_the_variables_it_uses() -> None:
    plan = _plan(
        "query Q($id: ID!, $n: Int) { user(id: $id) { name reviews(first: $n) { body } } }",
        {"id": "1"},
    )
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "users") {
              query Q__users($id:ID!){user(id:$id){_veche_t:__typename name _veche_k_email:email}}
            }
            Flatten {
              e0 at Query.user <- $_veche_reps0: User { email: _veche_k_email }
              Fetch(service: "reviews") {
                query Q__reviews_1($_veche_reps0:[_Any!]!$n:Int){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename reviews(first:$n){_veche_t:__typename body}}}}
              }
            }
          }
        }
        """
    )


def test_mutations_run_in_order_each_with_its_entity_fetches() -> None:
    plan = _plan(
        'mutation { a: rename(name: "x") { id } b: rename(name: "y") { id } '
        'c: review(body: "z") { author { name } } d: rename(name: "w") { id } }'
    )
    # c's author is fetched right after c, before d runs
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "users") {
              mutation anonymous__users{a:rename(name:"x"){_veche_t:__typename id}b:rename(name:"y"){_veche_t:__typename id}}
            }
            Fetch(service: "reviews") {
              mutation anonymous__reviews{c:review(body:"z"){_veche_t:__typename author{_veche_t:__typename _veche_k_email:email}}}
            }
            Flatten {
              e0 at Mutation.c > Review.author <- $_veche_reps0: User { email: _veche_k_email }
              Fetch(service: "users") {
                query anonymous__users_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename name}}}
              }
            }
            Fetch(service: "users") {
              mutation anonymous__users{d:rename(name:"w"){_veche_t:__typename id}}
            }
          }
        }
        """
    )


def test_query_roots_are_grouped_per_subgraph_and_fetched_in_parallel() -> None:
    plan = _plan("{ me { id } latestReviews { body } user(id: 1) { name } }")
    assert plan == _lines(
        """
        QueryPlan {
          Parallel {
            Fetch(service: "users") {
              query anonymous__users{me{_veche_t:__typename id}user(id:1){_veche_t:__typename name}}
            }
            Fetch(service: "reviews") {
              query anonymous__reviews{latestReviews{_veche_t:__typename body}}
            }
          }
        }
        """
    )


def test_entity_fetches_are_batched_per_subgraph_and_depth() -> None:
    plan = _plan("{ latestReviews { author { name } } a: latestReviews { author { id } } }")
    assert plan == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "reviews") {
              query anonymous__reviews{latestReviews{_veche_t:__typename author{_veche_t:__typename _veche_k_email:email}}a:latestReviews{_veche_t:__typename author{_veche_t:__typename _veche_k_email:email}}}
            }
            Flatten {
              e0 at Query.latestReviews > Review.author <- $_veche_reps0: User { email: _veche_k_email }
              e1 at Query.a > Review.author <- $_veche_reps1: User { email: _veche_k_email }
              Fetch(service: "users") {
                query anonymous__users_1($_veche_reps0:[_Any!]!$_veche_reps1:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename name}}e1:_entities(representations:$_veche_reps1){...on User{_veche_t:__typename id}}}
              }
            }
          }
        }
        """
    )


def test_skip_and_include_are_decided_by_the_normalizer() -> None:
    query = "query($s: Boolean!) { me { name @skip(if: $s) reviews @include(if: $s) { body } } }"
    skipped = _plan(query, {"s": True})
    assert "query anonymous__users{me{_veche_t:__typename _veche_k_email:email}}" in skipped
    assert 'Fetch(service: "reviews")' in skipped
    assert _plan(query, {"s": False}) == _lines(
        """
        QueryPlan {
          Fetch(service: "users") {
            query anonymous__users{me{_veche_t:__typename name}}
          }
        }
        """
    )


def test_fragments_are_inlined_and_fields_merged() -> None:
    query = """
    { me { ...A name ... on User { name reviews { body } } } }
    fragment A on User { reviews { author { id } } }
    """
    assert _plan(query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "users") {
              query anonymous__users{me{_veche_t:__typename name _veche_k_email:email}}
            }
            Flatten {
              e0 at Query.me <- $_veche_reps0: User { email: _veche_k_email }
              Fetch(service: "reviews") {
                query anonymous__reviews_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename reviews{_veche_t:__typename author{_veche_t:__typename _veche_k_email:email}body}}}}
              }
            }
            Flatten {
              e0 at Query.me > User.reviews > Review.author <- $_veche_reps0: User { email: _veche_k_email }
              Fetch(service: "users") {
                query anonymous__users_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename id}}}
              }
            }
          }
        }
        """
    )


def test_only_typename_needs_no_fetch() -> None:
    assert _plan("{ __typename }") == "QueryPlan {\n}"


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
    assert _plan("{ latestReviews { author { rating } } }", supergraph=supergraph) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "reviews") {
              query anonymous__reviews{latestReviews{_veche_t:__typename author{_veche_t:__typename _veche_k_email:email}}}
            }
            Flatten {
              e0 at Query.latestReviews > Review.author <- $_veche_reps0: User { email: _veche_k_email }
              Fetch(service: "users") {
                query anonymous__users_1($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename _veche_k_id:id}}}
              }
            }
            Flatten {
              e0 at Query.latestReviews > Review.author <- $_veche_reps0: User { id: _veche_k_id }
              Fetch(service: "ratings") {
                query anonymous__ratings_2($_veche_reps0:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename rating}}}
              }
            }
          }
        }
        """
    )


def test_subgraph_names_become_valid_operation_names() -> None:
    supergraph = compose([load_subgraph("users-v2.eu", "http://users", USERS)])
    assert "query Me__users_v2_eu{me{_veche_t:__typename name}}" in _plan(
        "query Me { me { name } }", supergraph=supergraph
    )
