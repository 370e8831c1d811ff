"""Operations across the three test subgraphs, through the gateway over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

GQL = Callable[..., Awaitable[dict[str, Any]]]

TWO_SUBGRAPHS = """
query PollWithAuthor {
  poll(id: "p1") { title author { id name role } }
}
"""

THREE_SUBGRAPHS = """
{
  user(id: "u1") {
    name
    polls { title issues { title reporter { name } department { name } } }
  }
}
"""

LIST_OF_ENTITIES = "{ polls { id author { name } } }"

COMPOUND_KEY = '{ issue(id: "i2") { department { city code name } } }'

REQUIRES = "{ users { id ageLabel } }"

# polls resolves ageLabel but needs birthYear from users first, even under a poll
REQUIRES_FROM_THE_SAME_SUBGRAPH = '{ poll(id: "p1") { author { ageLabel } } }'

PROVIDES = '{ poll(id: "p1") { creator { name } author { name } } }'

SHAREABLE = '{ issue(id: "i1") { location { city street } poll { title } } }'

OVERRIDE = '{ user(id: "u2") { name score } }'

ALIASES = """
{
  first: users(first: 1) { id handle: name }
  all: users { id }
  u1: user(id: "u1") { label: ageLabel name }
  u2: user(id: "u2") { label: ageLabel }
}
"""

FRAGMENTS = """
query WithFragments {
  poll(id: "p2") { ...PollParts author { ... on User { ...UserParts } } }
}
fragment PollParts on Poll { id title }
fragment UserParts on User { name ageLabel }
"""

UNION = """
{
  search(text: "o") {
    __typename
    ... on Poll { title author { name } }
    ... on User { name score }
  }
}
"""

INTERFACE = """
{
  issue(id: "i1") {
    posts {
      __typename id text
      ... on Comment { author { name } }
      ... on Answer { official }
    }
  }
}
"""

SKIP_INCLUDE = """
query Conditional($withAuthor: Boolean!, $skipTitle: Boolean!) {
  poll(id: "p1") {
    title @skip(if: $skipTitle)
    author @include(if: $withAuthor) { name }
  }
}
"""

VARIABLES = """
query ById($user: ID!, $poll: ID!) {
  user(id: $user) { name }
  poll(id: $poll) { title }
}
"""

TYPENAME = '{ __typename user(id: "u1") { __typename id } }'

# name from users; ageLabel from polls after users gives birthYear (in the same
# users fetch as name); polls answered by polls in the root fetch
MIXED = '{ poll(id: "p1") { author { name ageLabel polls { title } } } }'

# `who` and `n` mean different fields under Comment and Answer, both from users:
# they must not meet in one `... on User` selection
SAME_KEYS_UNDER_DIFFERENT_TYPES = """
{
  issue(id: "i1") {
    posts {
      ... on Comment { who: author { n: name } }
      ... on Answer { who: officialBy { n: handle } }
    }
  }
}
"""

BATCHED = "{ issues(first: 2) { reporter { name } posts { ... on Comment { author { name } } } } }"

NULLS = '{ user(id: "nobody") { name } poll(id: "nope") { title } }'


async def test_entity_join_across_two_subgraphs(gql: GQL) -> None:
    assert await gql(TWO_SUBGRAPHS) == {
        "data": {
            "poll": {
                "title": "Park renovation",
                "author": {"id": "u1", "name": "Anna", "role": "CITIZEN"},
            }
        }
    }


async def test_entity_join_across_three_subgraphs(gql: GQL) -> None:
    assert await gql(THREE_SUBGRAPHS) == {
        "data": {
            "user": {
                "name": "Anna",
                "polls": [
                    {
                        "title": "Park renovation",
                        "issues": [
                            {
                                "title": "Pothole",
                                "reporter": {"name": "Anna"},
                                "department": {"name": "Roads"},
                            }
                        ],
                    }
                ],
            }
        }
    }


async def test_list_of_entities(gql: GQL) -> None:
    assert await gql(LIST_OF_ENTITIES) == {
        "data": {
            "polls": [
                {"id": "p1", "author": {"name": "Anna"}},
                {"id": "p2", "author": {"name": "Boris"}},
            ]
        }
    }


async def test_compound_key(gql: GQL) -> None:
    assert await gql(COMPOUND_KEY) == {
        "data": {"issue": {"department": {"city": "kaluga", "code": "light", "name": "Lighting"}}}
    }


async def test_requires_sends_the_required_fields(gql: GQL) -> None:
    assert await gql(REQUIRES) == {
        "data": {
            "users": [
                {"id": "u1", "ageLabel": "born 1990"},
                {"id": "u2", "ageLabel": "age unknown"},
            ]
        }
    }


async def test_requires_within_the_requiring_subgraph_goes_through_entities(
    gql: GQL, seen_bodies: dict[str, list[Any]]
) -> None:
    assert await gql(REQUIRES_FROM_THE_SAME_SUBGRAPH) == {
        "data": {"poll": {"author": {"ageLabel": "born 1990"}}}
    }
    assert [b["variables"] for b in seen_bodies["polls"][1:]] == [
        {"_veche_reps0": [{"__typename": "User", "id": "u1", "birthYear": 1990}]}
    ]
    assert seen_bodies["users"] == [
        {
            "query": "query anonymous__users_1($_veche_reps0:[_Any!]!){e0:_entities("
            "representations:$_veche_reps0){...on User{_veche_t:__typename "
            "_veche_k_birthYear:birthYear}}}",
            "variables": {"_veche_reps0": [{"__typename": "User", "id": "u1"}]},
        }
    ]


async def test_provides_is_answered_by_the_providing_subgraph(
    gql: GQL, seen_headers: dict[str, list[dict[str, str]]]
) -> None:
    # creator.name comes from polls (suffix), author.name from users
    assert await gql(PROVIDES) == {
        "data": {"poll": {"creator": {"name": "Boris (polls)"}, "author": {"name": "Anna"}}}
    }
    assert len(seen_headers["polls"]) == 1
    assert len(seen_headers["users"]) == 1


async def test_shareable_fields_stay_in_the_current_subgraph(
    gql: GQL, seen_headers: dict[str, list[dict[str, str]]]
) -> None:
    assert await gql(SHAREABLE) == {
        "data": {
            "issue": {
                "location": {"city": "Kaluga", "street": "Lenina 1"},
                "poll": {"title": "Park renovation"},
            }
        }
    }
    assert set(seen_headers) == {"issues"}


async def test_override_moves_the_field(gql: GQL) -> None:
    assert await gql(OVERRIDE) == {"data": {"user": {"name": "Boris", "score": 100}}}


async def test_aliases_and_the_same_field_with_different_arguments(gql: GQL) -> None:
    result = await gql(ALIASES)
    # the client's order, though label (polls) arrives after name (users)
    assert list(result["data"]) == ["first", "all", "u1", "u2"]
    assert list(result["data"]["u1"]) == ["label", "name"]
    assert result == {
        "data": {
            "first": [{"id": "u1", "handle": "Anna"}],
            "all": [{"id": "u1"}, {"id": "u2"}],
            "u1": {"label": "born 1990", "name": "Anna"},
            "u2": {"label": "age unknown"},
        }
    }


async def test_fragments(gql: GQL) -> None:
    assert await gql(FRAGMENTS) == {
        "data": {
            "poll": {
                "id": "p2",
                "title": "New bus route",
                "author": {"name": "Boris", "ageLabel": "age unknown"},
            }
        }
    }


async def test_union_dispatches_on_typename(gql: GQL) -> None:
    assert await gql(UNION) == {
        "data": {
            "search": [
                {"__typename": "Poll", "title": "Park renovation", "author": {"name": "Anna"}},
                {"__typename": "Poll", "title": "New bus route", "author": {"name": "Boris"}},
                {"__typename": "User", "name": "Boris", "score": 100},
            ]
        }
    }


async def test_interface_with_entity_inside(gql: GQL) -> None:
    assert await gql(INTERFACE) == {
        "data": {
            "issue": {
                "posts": [
                    {
                        "__typename": "Comment",
                        "id": "c1",
                        "text": "Me too",
                        "author": {"name": "Boris"},
                    },
                    {"__typename": "Answer", "id": "a1", "text": "Fixing it", "official": True},
                ]
            }
        }
    }


async def test_skip_and_include(gql: GQL) -> None:
    both = await gql(SKIP_INCLUDE, {"withAuthor": True, "skipTitle": False})
    assert both == {"data": {"poll": {"title": "Park renovation", "author": {"name": "Anna"}}}}
    neither = await gql(SKIP_INCLUDE, {"withAuthor": False, "skipTitle": True})
    assert neither == {"data": {"poll": {}}}


async def test_each_fetch_gets_only_its_variables(
    gql: GQL, seen_bodies: dict[str, list[Any]]
) -> None:
    result = await gql(VARIABLES, {"user": "u2", "poll": "p2"}, "ById")
    assert result == {"data": {"user": {"name": "Boris"}, "poll": {"title": "New bus route"}}}
    assert seen_bodies["users"] == [
        {
            "query": "query ById__users($user:ID!){user(id:$user){_veche_t:__typename name}}",
            "variables": {"user": "u2"},
        }
    ]
    assert seen_bodies["polls"] == [
        {
            "query": "query ById__polls($poll:ID!){poll(id:$poll){_veche_t:__typename title}}",
            "variables": {"poll": "p2"},
        }
    ]


async def test_typename(gql: GQL) -> None:
    assert await gql(TYPENAME) == {
        "data": {"__typename": "Query", "user": {"__typename": "User", "id": "u1"}}
    }


async def test_nulls(gql: GQL) -> None:
    assert await gql(NULLS) == {"data": {"user": None, "poll": None}}


async def test_one_deduplicated_entities_fetch_per_subgraph_per_step(
    gql: GQL, seen_bodies: dict[str, list[Any]]
) -> None:
    comment = {"author": {"name": "Boris"}}
    assert await gql(BATCHED) == {
        "data": {
            "issues": [
                {"reporter": {"name": "Anna"}, "posts": [comment, {}]},
                {"reporter": {"name": "Boris"}, "posts": [comment, {}]},
            ]
        }
    }
    (users,) = seen_bodies["users"]
    assert users["variables"] == {
        "_veche_reps0": [{"__typename": "User", "id": "u1"}, {"__typename": "User", "id": "u2"}],
        "_veche_reps1": [{"__typename": "User", "id": "u2"}],
    }


async def test_one_object_filled_from_three_fetches(
    gql: GQL, seen_bodies: dict[str, list[Any]]
) -> None:
    assert await gql(MIXED) == {
        "data": {
            "poll": {
                "author": {
                    "name": "Anna",
                    "ageLabel": "born 1990",
                    "polls": [{"title": "Park renovation"}],
                }
            }
        }
    }
    assert (len(seen_bodies["polls"]), len(seen_bodies["users"])) == (2, 1)


async def test_same_response_keys_under_different_types_do_not_clash(
    gql: GQL, seen_bodies: dict[str, list[Any]]
) -> None:
    assert await gql(SAME_KEYS_UNDER_DIFFERENT_TYPES) == {
        "data": {
            "issue": {
                "posts": [{"who": {"n": "Boris"}}, {"who": {"n": "@anna"}}],
            }
        }
    }
    (users,) = seen_bodies["users"]
    assert users["query"] == (
        "query anonymous__users_1($_veche_reps0:[_Any!]!$_veche_reps1:[_Any!]!)"
        "{e0:_entities(representations:$_veche_reps0){...on User{_veche_t:__typename n:handle}}"
        "e1:_entities(representations:$_veche_reps1){...on User{_veche_t:__typename n:name}}}"
    )
