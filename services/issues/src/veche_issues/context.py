"""What one request to the issues subgraph carries: the caller, the service, its loaders."""

from __future__ import annotations

from dataclasses import dataclass

from strawberry.types import Info

from veche_issues.loaders import IssueLoaders
from veche_issues.service import IssuesService
from veche_kit.graphql import RequestContext


@dataclass
class IssuesContext(RequestContext):
    service: IssuesService | None = None
    batches: IssueLoaders | None = None

    @property
    def issues(self) -> IssuesService:
        assert self.service is not None
        return self.service

    @property
    def issue_loaders(self) -> IssueLoaders:
        assert self.batches is not None
        return self.batches


IssuesInfo = Info[IssuesContext, None]
