"""The real services' schemas compose with Apollo's own library exactly as with ours.

Each installed service's SDL comes from its Strawberry schema object
(`_service { sdl }` executed in-process); Apollo's `@apollo/composition`
(pinned in apollo/package-lock.json, installed here with `npm ci` when
missing) composes them with the machine's Node. The test fails on any
composition error, Apollo's or ours, and on any difference in the
client-visible schema: types, fields, arguments, their types and defaults,
enum values, interfaces, union members and deprecations, all compared on
printed schemas sorted by name. Descriptions are compared too, except where
subgraphs describe the same element differently: then each composer picks
one by its own rule (ours: the SUBGRAPHS order) and either subgraph's text
is accepted.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    lexicographic_sort_schema,
    print_schema,
)

from veche_gateway.compose import compose
from veche_gateway.subgraph import load_subgraph


def _apollo_api_schema(script: Path, sdls: dict[str, str]) -> str:
    subgraphs = [
        {"name": name, "url": f"http://{name}/graphql", "sdl": sdl} for name, sdl in sdls.items()
    ]
    run = subprocess.run(
        ["node", str(script)],
        input=json.dumps(subgraphs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(run.stdout)
    assert "errors" not in result, "Apollo's composition failed:\n" + "\n".join(result["errors"])
    api_schema: str = result["apiSchema"]
    return api_schema


def _descriptions(schema: GraphQLSchema) -> dict[str, str]:
    """Schema coordinate (`Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`) -> description."""
    found: dict[str, str] = {}

    def note(coordinate: str, description: str | None) -> None:
        if description:
            found[coordinate] = description

    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        note(type_.name, type_.description)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                note(f"{type_.name}.{field_name}", field.description)
                for arg_name, arg in field.args.items():
                    note(f"{type_.name}.{field_name}({arg_name}:)", arg.description)
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                note(f"{type_.name}.{field_name}", input_field.description)
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                note(f"{type_.name}.{value_name}", value.description)
    return found


def _without_descriptions(schema: GraphQLSchema) -> str:
    """The schema printed sorted by name, descriptions left out."""
    copy = build_schema(print_schema(schema))
    for type_ in copy.type_map.values():
        type_.description = None
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field in type_.fields.values():
                field.description = None
                for arg in field.args.values():
                    arg.description = None
        elif isinstance(type_, GraphQLInputObjectType):
            for input_field in type_.fields.values():
                input_field.description = None
        elif isinstance(type_, GraphQLEnumType):
            for value in type_.values.values():
                value.description = None
    return print_schema(lexicographic_sort_schema(copy))


@pytest.mark.parametrize(
    "names", [("users", "polls"), ("users", "polls", "issues")], ids=["users+polls", "all"]
)
def test_apollo_composes_the_services_as_the_gateway_does(
    apollo_composition: Path, service_sdl: Callable[[str], str], names: tuple[str, ...]
) -> None:
    sdls = {name: service_sdl(name) for name in names}
    subgraphs = [load_subgraph(name, f"http://{name}/graphql", sdl) for name, sdl in sdls.items()]
    ours = compose(subgraphs).schema  # raises CompositionError on a failure
    apollo = build_schema(_apollo_api_schema(apollo_composition, sdls))

    expected, got = _without_descriptions(apollo), _without_descriptions(ours)
    diff = "\n".join(
        difflib.unified_diff(
            expected.splitlines(), got.splitlines(), "apollo", "veche", lineterm=""
        )
    )
    assert expected == got, "the client schemas differ:\n" + diff

    given: dict[str, set[str]] = {}  # coordinate -> the subgraphs' descriptions of it
    for subgraph in subgraphs:
        for coordinate, text in _descriptions(subgraph.schema).items():
            given.setdefault(coordinate, set()).add(text)
    apollo_texts, our_texts = _descriptions(apollo), _descriptions(ours)
    differing = {
        coordinate: (apollo_texts.get(coordinate), our_texts.get(coordinate))
        for coordinate in apollo_texts.keys() | our_texts.keys()
        if apollo_texts.get(coordinate) != our_texts.get(coordinate)
    }
    unexplained = {
        coordinate: texts
        for coordinate, texts in differing.items()
        if len(given.get(coordinate, set())) < 2 or not set(texts) <= given[coordinate]
    }
    assert unexplained == {}, "descriptions differ (apollo, veche)"
