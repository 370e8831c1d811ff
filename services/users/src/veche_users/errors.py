"""The users service's own refusals, with their codes from api.graphql."""

from __future__ import annotations

from veche_kit.errors import DomainError


class InsufficientPointsError(DomainError):
    code = "INSUFFICIENT_POINTS"


class OutOfStockError(DomainError):
    code = "OUT_OF_STOCK"


class DeliveryFailedError(DomainError):
    """The SMS or mail gateway refused or did not answer; the code was not sent."""

    code = "DELIVERY_FAILED"
