"""The issues subgraph's batch loaders: one per relation, made fresh for each request.

Every field that reaches another record goes through one of these, so a list of
issues costs one query per relation, not one per issue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from strawberry.dataloader import DataLoader

from veche_issues.moderation_store import visible
from veche_issues.store import IssueStore
from veche_kit.mongo import Document


@dataclass(frozen=True)
class CommentsPage:
    comments: list[Document]
    has_next: bool
    total: int


# (issue id, page size, after this comment id, what hidden comments the viewer sees:
# moderation.scope_of)
CommentsKey = tuple[str, int, str | None, str | None]


class IssueById(DataLoader[str, Document | None]):
    def __init__(self, store: IssueStore) -> None:
        super().__init__(load_fn=store.by_ids)


# (issue id, at most this many offers)
OffersKey = tuple[str, int]


class OffersByIssue(DataLoader[OffersKey, list[Document]]):
    """Each issue's first solver offers, oldest first; issues asking for as many share a batch."""

    def __init__(self, store: IssueStore) -> None:
        async def load(keys: list[OffersKey]) -> list[list[Document]]:
            sizes: dict[int, list[str]] = defaultdict(list)
            for issue_id, first in keys:
                sizes[first].append(issue_id)
            found: dict[OffersKey, list[Document]] = {}
            for first, issue_ids in sizes.items():
                offers = await store.offers_by_issues(issue_ids, limit=first)
                found.update({(i, first): offers[i] for i in issue_ids})
            return [found[key] for key in keys]

        super().__init__(load_fn=load)


class CommentsByIssue(DataLoader[CommentsKey, CommentsPage]):
    """A page of each issue's comments; issues asking for the same window share a query."""

    def __init__(self, store: IssueStore) -> None:
        async def load(keys: list[CommentsKey]) -> list[CommentsPage]:
            windows: dict[tuple[int, str | None, str | None], list[str]] = defaultdict(list)
            for issue_id, first, after, scope in keys:
                windows[(first, after, scope)].append(issue_id)
            pages: dict[CommentsKey, CommentsPage] = {}
            for (first, after, scope), issue_ids in windows.items():
                shown = visible(scope, "author_id")
                found = await store.comments_pages(issue_ids, first=first, after=after, shown=shown)
                for issue_id, (comments, has_next, total) in found.items():
                    pages[(issue_id, first, after, scope)] = CommentsPage(comments, has_next, total)
            return [pages[key] for key in keys]

        super().__init__(load_fn=load)


class SupportedByViewer(DataLoader[str, bool]):
    """Whether one signed-in viewer supports each issue."""

    def __init__(self, store: IssueStore, user_id: str) -> None:
        async def load(issue_ids: list[str]) -> list[bool]:
            mine = await store.supported_among(user_id, issue_ids)
            return [i in mine for i in issue_ids]

        super().__init__(load_fn=load)


@dataclass
class IssueLoaders:
    """The loaders of one request, each made on first use."""

    store: IssueStore
    _supported: dict[str, SupportedByViewer] = field(init=False, default_factory=dict)

    @cached_property
    def issue_by_id(self) -> IssueById:
        return IssueById(self.store)

    @cached_property
    def offers_by_issue(self) -> OffersByIssue:
        return OffersByIssue(self.store)

    @cached_property
    def comments_by_issue(self) -> CommentsByIssue:
        return CommentsByIssue(self.store)

    def supported_by_viewer(self, user_id: str) -> SupportedByViewer:
        if user_id not in self._supported:
            self._supported[user_id] = SupportedByViewer(self.store, user_id)
        return self._supported[user_id]
