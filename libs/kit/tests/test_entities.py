"""`_entities` refuses representations that name none of the subgraph's
entities with BAD_USER_INPUT: anyone who reaches a subgraph can call it, and
a wrong `__typename` is the caller's mistake, not an INTERNAL of ours."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from veche_kit.graphql import FederatedSchema


@strawberry.federation.type(keys=["id"])
class Thing:
    id: strawberry.ID
    name: str

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Thing:
        return cls(id=id, name=f"thing {id}")


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing | None:
        return None


schema = FederatedSchema(query=Query)
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Thing { name } } }"


async def entities(*representations: Any) -> dict[str, Any]:
    result = await schema.execute(ENTITIES, variable_values={"r": list(representations)})
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


async def test_known_entities_resolve() -> None:
    assert (await entities({"__typename": "Thing", "id": "7"}))["data"] == {
        "_entities": [{"name": "thing 7"}]
    }


@pytest.mark.parametrize(
    "representation",
    [{"__typename": "Nope", "id": "1"}, {"id": "1"}, {"__typename": ""}, "Thing", 5],
)
async def test_a_representation_naming_no_entity_is_bad_input(representation: Any) -> None:
    answer = await entities({"__typename": "Thing", "id": "1"}, representation)
    assert answer["data"] is None  # `_entities` is non-null in the federation spec
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "representations[1]" in error["message"]
    assert "Thing" in error["message"]
