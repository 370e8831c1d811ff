"""Domain errors with the stable codes of the public contract.

Domain and service code raise these; they never import Strawberry. One place
(`veche_kit.graphql`) turns them into GraphQL errors with `extensions.code`.
The refusals only one service makes (ALREADY_VOTED, OUT_OF_STOCK...) are
`DomainError` subclasses in that service's own `errors` module.

Each refusal is said in English (`message`, also what logs show) and in
Russian (`ru`, required): `veche_kit.graphql` answers in the language the
request's `Accept-Language` prefers (`veche_kit.language`).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the caller can act on. `code` is one of api.graphql's codes."""

    code: ClassVar[str] = "BAD_USER_INPUT"

    def __init__(self, message: str, *, ru: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.ru = ru
        self.extensions = extensions


class UnauthenticatedError(DomainError):
    code = "UNAUTHENTICATED"


class ForbiddenError(DomainError):
    code = "FORBIDDEN"


class NotFoundError(DomainError):
    code = "NOT_FOUND"


class BadUserInputError(DomainError):
    """Bad input; `field` names the input field at fault when there is one."""

    code = "BAD_USER_INPUT"

    def __init__(
        self, message: str, field: str | None = None, *, ru: str, **extensions: Any
    ) -> None:
        if field is not None:
            extensions["field"] = field
        super().__init__(message, ru=ru, **extensions)


class ConflictError(DomainError):
    code = "CONFLICT"


class InvalidTransitionError(DomainError):
    code = "INVALID_TRANSITION"


class RateLimitedError(DomainError):
    code = "RATE_LIMITED"
