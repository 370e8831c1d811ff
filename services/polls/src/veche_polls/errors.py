"""The polls service's own refusals, with their codes from api.graphql."""

from __future__ import annotations

from veche_kit.errors import DomainError


class NotEligibleError(DomainError):
    """The voter is outside the poll's audience (`reason`: DISTRICT, AGE or VERIFICATION)."""

    code = "NOT_ELIGIBLE"


class AlreadyVotedError(DomainError):
    code = "ALREADY_VOTED"


class PollNotActiveError(DomainError):
    code = "POLL_NOT_ACTIVE"
