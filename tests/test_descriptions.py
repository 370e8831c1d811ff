"""The schema is the product's manual: every public type, field, argument, input
field and enum value of every subgraph, the root types included, is described."""

from __future__ import annotations

import pytest

from veche_issues.schema import schema as issues_schema
from veche_kit.graphql import MUTATION_DESCRIPTION, QUERY_DESCRIPTION, undescribed
from veche_polls.schema import schema as polls_schema
from veche_users.schema import schema as users_schema

SUBGRAPHS = {"users": users_schema, "polls": polls_schema, "issues": issues_schema}


@pytest.mark.parametrize("name", SUBGRAPHS)
def test_everything_public_is_described(name: str) -> None:
    assert undescribed(SUBGRAPHS[name]._schema) == []


@pytest.mark.parametrize("name", SUBGRAPHS)
def test_the_root_types_say_the_same_in_every_subgraph(name: str) -> None:
    graph = SUBGRAPHS[name]._schema
    assert graph.query_type is not None
    assert graph.mutation_type is not None
    assert (graph.query_type.description, graph.mutation_type.description) == (
        QUERY_DESCRIPTION,
        MUTATION_DESCRIPTION,
    )


LIVE_FIELDS = {
    "polls": ("pollResults", "pollId"),
    "issues": ("issueUpdated", "id"),
    "users": ("myNotifications", None),
}


@pytest.mark.parametrize("name", LIVE_FIELDS)
def test_the_subscription_type_and_its_fields_are_described(name: str) -> None:
    subscription = SUBGRAPHS[name]._schema.subscription_type
    assert subscription is not None
    assert subscription.description
    field_name, argument = LIVE_FIELDS[name]
    field = subscription.fields[field_name]
    assert field.description
    assert argument is None or field.args[argument].description
