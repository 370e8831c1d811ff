"""What one request to the issues subgraph carries: the caller, the service, its loaders."""

from __future__ import annotations

from dataclasses import dataclass

from strawberry.types import Info

from veche_issues.loaders import IssueLoaders
from veche_issues.service import IssuesService
from veche_kit.graphql import RequestContext
from veche_kit.live import LiveHub


@dataclass
class IssuesContext(RequestContext):
    service: IssuesService | None = None
    batches: IssueLoaders | None = None
    live: LiveHub[None] | None = None  # Subscription.issueUpdated (`veche_issues.live`)

    @property
    def live_hub(self) -> LiveHub[None]:
        assert self.live is not None
        return self.live

    def renew(self) -> None:
        super().renew()
        if self.batches is not None:
            self.batches = IssueLoaders(self.batches.store)

    @property
    def issues(self) -> IssuesService:
        assert self.service is not None
        return self.service

    @property
    def issue_loaders(self) -> IssueLoaders:
        assert self.batches is not None
        return self.batches


IssuesInfo = Info[IssuesContext, None]
