"""The users service's own refusals, with their codes from api.graphql."""

from __future__ import annotations

from veche_kit.errors import DomainError


class InsufficientPointsError(DomainError):
    code = "INSUFFICIENT_POINTS"


class OutOfStockError(DomainError):
    code = "OUT_OF_STOCK"
