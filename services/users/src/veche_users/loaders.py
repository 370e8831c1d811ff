"""The users subgraph's batch loaders: one per relation, made fresh for each request."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from strawberry.dataloader import DataLoader

from veche_kit.mongo import Document
from veche_users import store
from veche_users.store import UserStore


class _ById(DataLoader[str, Document | None]):
    collection: str

    def __init__(self, users: UserStore) -> None:
        async def load(ids: list[str]) -> list[Document | None]:
            return await users.by_ids(self.collection, ids)

        super().__init__(load_fn=load)


class UserById(_ById):
    collection = store.USERS


class DistrictById(_ById):
    collection = store.DISTRICTS


class DepartmentById(_ById):
    collection = store.DEPARTMENTS


@dataclass
class UserLoaders:
    """The loaders of one request, each made on first use."""

    store: UserStore

    @cached_property
    def user_by_id(self) -> UserById:
        return UserById(self.store)

    @cached_property
    def district_by_id(self) -> DistrictById:
        return DistrictById(self.store)

    @cached_property
    def department_by_id(self) -> DepartmentById:
        return DepartmentById(self.store)
