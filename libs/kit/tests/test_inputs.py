"""`inputs`: each list and text input has a maximum, stated and checked at limit and limit+1."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import strawberry
from graphql import parse

from veche_kit.graphql import FederatedSchema
from veche_kit.inputs import (
    DEFAULT_CHARS,
    DEFAULT_ITEMS,
    ID_CHARS,
    Bound,
    bound_of,
    bounded,
    oversized_input,
)


@strawberry.input(description="Where to look.")
class Where:
    names: list[str] = strawberry.field(description="Names.", metadata=bounded(items=2, chars=3))


def _count(
    ids: Annotated[list[strawberry.ID], strawberry.argument(description="Ids.")],
    text: Annotated[str | None, strawberry.argument(description="Text.")] = None,
    where: Annotated[Where | None, strawberry.argument(description="Where.")] = None,
    size: Annotated[int | None, strawberry.argument(description="Size.")] = None,
) -> int:
    return len(ids)


@strawberry.type
class Query:
    count: int = strawberry.field(resolver=_count, description="Count.")


SCHEMA = FederatedSchema(query=Query)
GRAPHQL = SCHEMA._schema


def refused(query: str, variables: dict[str, Any] | None = None) -> Any:
    error = oversized_input(GRAPHQL, parse(query), None, variables)
    return None if error is None else error.extensions


def test_bounded_declares_only_what_is_given() -> None:
    assert bounded() == {}
    assert bounded(items=3) == {"veche:max_items": 3}
    assert bounded(chars=9) == {"veche:max_chars": 9}


def test_defaults_apply_by_type_and_numbers_have_no_bound() -> None:
    args = GRAPHQL.query_type.fields["count"].args  # type: ignore[union-attr]
    assert bound_of(args["ids"]) == Bound(DEFAULT_ITEMS, ID_CHARS)
    assert bound_of(args["text"]) == Bound(None, DEFAULT_CHARS)
    assert bound_of(args["size"]) is None
    assert "At most 1000 characters." in (args["text"].description or "")


def test_a_list_is_bounded_at_its_limit() -> None:
    query = "query($i: [ID!]!) { count(ids: $i) }"
    assert refused(query, {"i": ["x"] * DEFAULT_ITEMS}) is None
    assert refused(query, {"i": ["x"] * (DEFAULT_ITEMS + 1)}) == {
        "code": "BAD_USER_INPUT",
        "field": "ids",
    }


def test_each_text_of_a_list_is_bounded_at_its_limit() -> None:
    query = "query($i: [ID!]!) { count(ids: $i) }"
    assert refused(query, {"i": ["a" * ID_CHARS]}) is None
    assert refused(query, {"i": ["ok", "a" * (ID_CHARS + 1)]}) == {
        "code": "BAD_USER_INPUT",
        "field": "ids[1]",
    }


def test_a_literal_text_is_bounded_at_its_limit() -> None:
    assert refused('{ count(ids: [], text: "' + "t" * DEFAULT_CHARS + '") }') is None
    over = refused('{ count(ids: [], text: "' + "t" * (DEFAULT_CHARS + 1) + '") }')
    assert over == {"code": "BAD_USER_INPUT", "field": "text"}


@pytest.mark.parametrize(
    ("where", "field"),
    [({"names": ["a", "b", "c"]}, "names"), ({"names": ["abcd"]}, "names[0]")],
)
def test_input_object_fields_are_bounded_by_their_declaration(
    where: dict[str, Any], field: str
) -> None:
    query = "query($w: Where) { count(ids: [], where: $w) }"
    assert refused(query, {"w": {"names": ["abc", "def"]}}) is None
    assert refused(query, {"w": where}) == {"code": "BAD_USER_INPUT", "field": field}


def test_a_single_value_for_a_list_counts_as_one_item() -> None:
    assert refused('{ count(ids: "' + "a" * (ID_CHARS + 1) + '") }') == {
        "code": "BAD_USER_INPUT",
        "field": "ids[0]",
    }


def test_no_operation_or_wrong_types_are_left_to_graphql() -> None:
    assert oversized_input(GRAPHQL, parse("fragment F on Query { count }"), None, None) is None
    assert refused("{ count(ids: 5, text: 7) }") is None
