"""The users subgraph's batch loaders: one per relation, made fresh for each request."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """The loaders of one request."""

    store: UserStore
    user_by_id: UserById = field(init=False)
    district_by_id: DistrictById = field(init=False)
    department_by_id: DepartmentById = field(init=False)

    def __post_init__(self) -> None:
        self.user_by_id = UserById(self.store)
        self.district_by_id = DistrictById(self.store)
        self.department_by_id = DepartmentById(self.store)
