"""Error types and the public error codes the gateway itself emits."""

from __future__ import annotations

from typing import Any

from veche_gateway.language import Language, language_var

BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
SUBGRAPH_UNAVAILABLE = "SUBGRAPH_UNAVAILABLE"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
INTERNAL = "INTERNAL"
FORBIDDEN = "FORBIDDEN"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"


class CompositionError(Exception):
    """The subgraphs' schemas do not compose; the message names who is at fault."""


class PlanError(Exception):
    """An operation that validated cannot be planned over the subgraphs."""


class RequestError(Exception):
    """A client request refused before execution, with its public code.

    `status` is the HTTP status for a `application/graphql-response+json`
    client; plain `application/json` clients get 200 for GraphQL-level errors,
    as GraphQL-over-HTTP asks. `ru` is the message in Russian (`said` answers in it
    when the request reads Russian); errors graphql-core words stay English.
    """

    def __init__(
        self,
        message: str,
        code: str = BAD_USER_INPUT,
        status: int = 400,
        errors: list[dict[str, Any]] | None = None,
        graphql_level: bool = True,
        *,
        ru: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.ru = ru
        self.code = code
        self.status = status
        self.graphql_level = graphql_level
        self.errors = errors or [{"message": message, "extensions": {"code": code}}]

    def said(self) -> list[dict[str, Any]]:
        """`errors` in the language of the request at hand (chosen when answering, so a
        refusal the gateway keeps for a document answers each request in its own)."""
        if self.ru is None or language_var.get() is not Language.RU:
            return self.errors
        return [{**self.errors[0], "message": self.ru}, *self.errors[1:]]
