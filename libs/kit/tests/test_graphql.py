"""`graphql`: domain errors coded, the unexpected hidden as INTERNAL, page sizes and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import pytest
import strawberry
from graphql import build_schema
from strawberry.extensions import SchemaExtension

from veche_kit.cursors import encode_cursor
from veche_kit.errors import BadUserInputError, NotFoundError
from veche_kit.graphql import (
    MAX_PAGE,
    Connection,
    FederatedSchema,
    _Hooks,
    connection,
    id_connection,
    page_size,
    undescribed,
)


def _fail(how: str) -> int:
    if how == "missing":
        raise NotFoundError("No such poll.", ru="Такого опроса нет.", id="p1")
    raise RuntimeError("secret internals")


@strawberry.type
class Query:
    fail: int = strawberry.field(resolver=_fail, description="Fails as asked.")


SCHEMA = FederatedSchema(query=Query)


async def test_a_domain_error_keeps_its_code_message_and_extensions() -> None:
    result = await SCHEMA.execute('{ fail(how: "missing") }')
    (error,) = result.errors or []
    assert error.message == "No such poll."
    assert error.extensions == {"code": "NOT_FOUND", "id": "p1"}


async def test_an_unexpected_error_is_internal_and_leaks_nothing() -> None:
    result = await SCHEMA.execute('{ fail(how: "boom") }')
    (error,) = result.errors or []
    assert (error.extensions or {})["code"] == "INTERNAL"
    assert "secret" not in error.message


async def test_a_wrong_variable_type_is_bad_user_input() -> None:
    result = await SCHEMA.execute("query($h: String!) { fail(how: $h) }", variable_values={"h": 5})
    assert (result.errors or [])[0].extensions == {"code": "BAD_USER_INPUT"}


def test_page_size_is_bounded() -> None:
    assert page_size(None) == 20
    assert page_size(1) == 1
    assert page_size(MAX_PAGE) == MAX_PAGE
    for bad in (0, -1, MAX_PAGE + 1):
        with pytest.raises(BadUserInputError):
            page_size(bad)


def test_a_page_ends_at_its_last_cursor() -> None:
    page = connection(["a", "b"], ["c1", "c2"], has_next=True, total=5)
    assert [e.node for e in page.edges] == ["a", "b"]
    assert (page.page_info.end_cursor, page.page_info.has_next_page) == ("c2", True)
    empty: Connection[str] = connection([], [], has_next=False, total=0)
    assert empty.page_info.end_cursor is None


def test_an_id_page_uses_document_ids_as_cursors() -> None:
    page = id_connection(["x"], [{"_id": "d1"}], has_next=False, total=1)
    assert page.edges[0].cursor == encode_cursor(["d1"])


def test_undescribed_names_each_element_without_a_description() -> None:
    sdl = '''
    """Reads."""
    type Query {
      """A thing."""
      thing(size: Int): Gadget
    }
    type Gadget { name: String }
    enum Size { """Small.""" S L }
    '''
    found = undescribed(build_schema(sdl))
    assert sorted(found) == ["Gadget", "Gadget.name", "Query.thing(size)", "Size", "Size.L"]


class _Recorder(SchemaExtension):
    """Generator hooks on every step, recording when each enters and leaves."""

    seen: ClassVar[list[str]] = []

    def on_operation(self) -> Iterator[None]:
        self.seen.append("operation")
        yield
        self.seen.append("operation done")

    def on_parse(self) -> Iterator[None]:
        self.seen.append("parse")
        yield
        self.seen.append("parse done")

    def on_validate(self) -> Iterator[None]:
        self.seen.append("validate")
        yield
        self.seen.append("validate done")

    def on_execute(self) -> Iterator[None]:
        self.seen.append("execute")
        yield
        self.seen.append("execute done")


class _AsyncRecorder(SchemaExtension):
    """An async hook: Strawberry's own context manager runs it."""

    seen: ClassVar[list[str]] = []

    async def on_execute(self) -> AsyncIterator[None]:
        self.seen.append("async execute")
        yield
        self.seen.append("async execute done")


async def test_the_light_hook_runner_runs_every_step_in_order_and_falls_back() -> None:
    schema = FederatedSchema(query=Query, extensions=[_Recorder, _AsyncRecorder])
    _Recorder.seen.clear()
    _AsyncRecorder.seen.clear()
    assert (await schema.execute("{ __typename }")).data == {"__typename": "Query"}
    steps = ["operation", "parse", "parse done", "validate", "validate done", "execute"]
    assert _Recorder.seen == [*steps, "execute done", "operation done"]
    assert _AsyncRecorder.seen == ["async execute", "async execute done"]
    _Recorder.seen.clear()
    (error,) = (await schema.execute("{ nope }")).errors or []
    assert _Recorder.seen == [*steps[:-1], "operation done"]  # no execution, but the end
    assert error.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}  # ErrorCodes ran too


def test_a_hook_is_closed_at_its_yield_when_the_step_fails() -> None:
    closed: list[str] = []

    def hook() -> Iterator[None]:
        try:
            yield
            closed.append("after yield")
        finally:
            closed.append("closed")

    hooks = _Hooks([hook])
    with pytest.raises(ValueError, match="boom"), hooks:
        raise ValueError("boom")
    assert closed == ["closed"]
