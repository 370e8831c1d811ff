"""Live issues: an issue pushed again after it changes (`Subscription.issueUpdated`).

Fed by the issues service's own events (`veche_kit.live`): each instance binds
its own queue to the events that change an issue (status, supports, comments,
solver, resolution) and wakes that issue's subscribers at most once per
`ISSUES_LIVE_INTERVAL_MS`. An event is published after its change committed,
so a wake reads the change; the subscriber's loaders are renewed first, so every
field of the update (status, supportersCount, comments' totalCount) is read afresh.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from veche_issues.context import IssuesContext
from veche_issues.moderation import may_see
from veche_kit.errors import NotFoundError
from veche_kit.events import (
    Event,
    IssueClosed,
    IssueCommented,
    IssueResolved,
    IssueSolverAssigned,
    IssueSolverOffered,
    IssueStatusChanged,
    IssueSupported,
)
from veche_kit.live import TopicsOf
from veche_kit.mongo import Document

CHANGES = (
    IssueStatusChanged,
    IssueSupported,
    IssueCommented,
    IssueSolverOffered,
    IssueSolverAssigned,
    IssueResolved,
    IssueClosed,
)


def topic(issue_id: str) -> str:
    return f"issue:{issue_id}"


def _issue_of(event: Event) -> Iterable[str]:
    issue_id = getattr(event, "issue_id", None)
    return [topic(issue_id)] if isinstance(issue_id, str) else []


ROUTES: dict[str, TopicsOf] = {change.type: _issue_of for change in CHANGES}


async def _visible(context: IssuesContext, issue_id: str) -> Document:
    """The issue, unless there is none or a moderator hid it from this viewer."""
    document = await context.issue_loaders.issue_by_id.load(issue_id)
    if document is None or not may_see(await context.principal(), document, "reporter_id"):
        raise NotFoundError(
            f"No issue with id '{issue_id}'.", ru=f"Обращения с id «{issue_id}» нет."
        )
    return document


async def watch_issue(context: IssuesContext, issue_id: str) -> AsyncIterator[Document]:
    """The issue now, then after each change (NOT_FOUND as `Query.issue` would be null)."""
    with context.live_hub.subscribe(topic(issue_id)) as subscriber:
        yield await _visible(context, issue_id)
        while await subscriber.wait():
            context.renew()  # the last update's loaders hold the issue as it was
            yield await _visible(context, issue_id)
