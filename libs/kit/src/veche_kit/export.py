"""A person's data export (152-FZ): what a service keeps about them, as plain JSON.

Users answers `exportMyData` with a `PersonalData` entity; polls and issues each add
their part to it (federation joins them into one document). Each part is built by
`records` from the service's own store and checked by `require_owner`: only the
person themself may read it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Self

import strawberry
from bson import ObjectId

from veche_kit.auth import Principal
from veche_kit.errors import ForbiddenError
from veche_kit.mongo import Database, Document

# Bookkeeping that is not about the person: relay state, search terms, secrets' digests.
INTERNAL_FIELDS = frozenset(
    {"envelope", "pending", "seq", "tally_pending", "folded_in", "search_terms", "password_hash"}
)
PER_KIND_LIMIT = 10_000  # a safety bound: one person's records of one kind
# The entity's description, the same in every subgraph that adds to it.
PERSONAL_DATA = (
    "Everything Veche keeps about the signed-in person (their 152-FZ data export): "
    "`account` from the users service, `polls` and `issues` from theirs, each a map of "
    "record kind to records. Only the person themself can read it (FORBIDDEN otherwise)."
)


@strawberry.type
class PersonalDataKey:
    """The key of `PersonalData`, which each subgraph's own type extends with its part."""

    user_id: strawberry.ID = strawberry.field(description="Whose data this is.")

    @classmethod
    def resolve_reference(cls, **key: strawberry.ID) -> Self:
        return cls(user_id=key["userId"])  # the representation names the key `userId`


def require_owner(caller: Principal, user_id: str) -> None:
    if caller.user_id != user_id:
        raise ForbiddenError(
            "Only the person themself can export their data.",
            ru="Выгрузить свои данные может только сам человек.",
        )


def plain(value: Any) -> Any:
    """`value` with datetimes as ISO 8601, ObjectIds as strings and bytes as hex."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


async def records(
    db: Database, queries: Mapping[str, Document], hidden: Collection[str] = INTERNAL_FIELDS
) -> dict[str, list[Any]]:
    """Collection -> the documents each query finds, oldest first, without `hidden` fields."""
    found: dict[str, list[Any]] = {}
    for collection, query in queries.items():
        documents = await db[collection].find(query).sort("_id", 1).to_list(PER_KIND_LIMIT)
        found[collection] = [
            plain({key: item for key, item in document.items() if key not in hidden})
            for document in documents
        ]
    return found
