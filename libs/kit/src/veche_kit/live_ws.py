"""A subgraph's subscriptions over `graphql-transport-ws`: Strawberry's handler, with
every error coded as a POST's are (`veche_kit.graphql.coded`).

Strawberry runs the protocol (connection_init/ack, ping/pong, subscribe, next,
error, complete, close codes). Its stream yields results whose errors have not
passed the `ErrorCodes` extension a POST passes; `_CodedSchema` codes them on
their way out, so a refusal (NOT_FOUND, FORBIDDEN, UNAUTHENTICATED) reads the same
over either transport. A subscriber's token is verified again before each update
after the first: one that expired, or whose user signed out or changed role,
ends the subscription with UNAUTHENTICATED (the reason in its extensions).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import ExecutionResult

from veche_kit.errors import UnauthenticatedError
from veche_kit.graphql import RequestContext, coded

# How long a socket may stay open before its connection_init (then closed with 4408).
CONNECTION_INIT_WAIT = timedelta(seconds=10)
DEFAULT_MAX_SUBSCRIPTIONS = 20


class _CodedSchema:
    """The schema as the handler sees it: `stream` with coded errors, the rest as is."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        results = await self._schema.stream(*args, **kwargs)
        return _coded(results, kwargs.get("context_value"))


async def _coded(results: AsyncGenerator[Any, None], context: Any) -> AsyncGenerator[Any, None]:
    """The results, errors coded; ended with UNAUTHENTICATED as soon as the caller's
    token, checked again before each later update, no longer holds."""
    first = True
    try:
        async for result in results:
            if not first and isinstance(context, RequestContext):
                refused = await _token_refused(context)
                if refused is not None:
                    yield refused
                    return
            first = False
            if isinstance(result, ExecutionResult) and result.errors:
                result.errors = [coded(error) for error in result.errors]
            yield result
    finally:
        await results.aclose()


async def _token_refused(context: RequestContext) -> ExecutionResult | None:
    try:
        await context.recheck()
    except UnauthenticatedError as error:
        return ExecutionResult(
            data=None, errors=[coded(GraphQLError(error.message, original_error=error))]
        )
    return None


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler over `_CodedSchema`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "schema" in kwargs:
            kwargs["schema"] = _CodedSchema(kwargs["schema"])
        super().__init__(*args, **kwargs)
