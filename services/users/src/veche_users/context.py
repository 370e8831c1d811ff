"""What a users resolver gets: the request, the caller, the service and the loaders."""

from __future__ import annotations

from dataclasses import dataclass

from strawberry.types import Info

from veche_kit.graphql import RequestContext
from veche_kit.live import LiveHub
from veche_users.loaders import UserLoaders
from veche_users.service import UsersService


@dataclass
class UsersContext(RequestContext):
    service: UsersService | None = None
    batches: UserLoaders | None = None
    live: LiveHub[int] | None = None  # Subscription.myNotifications (`veche_users.live`)

    @property
    def live_hub(self) -> LiveHub[int]:
        assert self.live is not None
        return self.live

    @property
    def users(self) -> UsersService:
        assert self.service is not None
        return self.service

    @property
    def user_loaders(self) -> UserLoaders:
        assert self.batches is not None
        return self.batches


UsersInfo = Info[UsersContext, None]
