"""`errors`: each refusal carries its stable code and its extensions."""

from __future__ import annotations

import pytest

from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DomainError, "BAD_USER_INPUT"),
        (UnauthenticatedError, "UNAUTHENTICATED"),
        (ForbiddenError, "FORBIDDEN"),
        (NotFoundError, "NOT_FOUND"),
        (BadUserInputError, "BAD_USER_INPUT"),
        (ConflictError, "CONFLICT"),
        (InvalidTransitionError, "INVALID_TRANSITION"),
        (RateLimitedError, "RATE_LIMITED"),
    ],
)
def test_each_error_has_its_code_and_keeps_message_and_extensions(
    error: type[DomainError], code: str
) -> None:
    raised = error("Try again later.", ru="Попробуйте позже.", retryAfter=3)
    assert raised.code == code
    assert isinstance(raised, DomainError)
    assert raised.message == str(raised) == "Try again later."
    assert raised.ru == "Попробуйте позже."
    assert raised.extensions == {"retryAfter": 3}


def test_bad_user_input_names_its_field_only_when_given() -> None:
    assert BadUserInputError("Too long.", field="title", ru="Длинно.").extensions == {
        "field": "title"
    }
    assert BadUserInputError("Too long.", ru="Длинно.").extensions == {}
    both = BadUserInputError("Too long.", field="title", ru="Длинно.", max=10)
    assert both.extensions == {"field": "title", "max": 10}


def test_errors_do_not_share_extensions() -> None:
    first, second = NotFoundError("a", ru="а", id="1"), NotFoundError("b", ru="б")
    assert first.extensions == {"id": "1"}
    assert second.extensions == {}
