"""Refusals only the issues service makes, with the public contract's codes."""

from __future__ import annotations

from veche_kit.errors import DomainError


class NotEligibleError(DomainError):
    """The caller may not take part in this (e.g. supports that need a verified phone);
    `reason` says why."""

    code = "NOT_ELIGIBLE"
