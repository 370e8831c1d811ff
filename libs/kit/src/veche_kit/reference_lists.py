"""Reference lists one service owns and others check input against, kept by events.

The owner (users for districts and departments, issues for categories) tells its whole current list
(`reference.*_published`) at every start and with every change, in the transaction of
the change (`tell`). Each consumer keeps the list told last in one document of its
own store (`ProjectedLists`, collection `reference_lists`) and checks ids against it
(`require_known`), without ever reading the owner's store or calling it.

A consumer that has heard no list yet (the first seconds of a new deployment) cannot
tell a wrong id from a right one. With demo data on (`make run`) it checks against
the demo rows its owner seeds into an empty store (`veche_kit.reference`); otherwise
it refuses with `reason: REFERENCE_DATA_PENDING` and `retryAfterSeconds`, and the
list arrives once the owner runs: every start tells it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from veche_kit.clock import utcnow
from veche_kit.errors import BadUserInputError
from veche_kit.mongo import Database, Document, Session
from veche_kit.reference import CATEGORIES, DEPARTMENTS, DISTRICTS

# A consumer's copies of other services' lists: one document per list, by name.
PROJECTED = "reference_lists"
# An owner's record of each list it told: every telling updates its document, so two
# changes at once conflict and the later one reads the list with the earlier change.
TOLD = "reference_told"
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ReferenceList:
    """One list as its consumers name it in refusals."""

    name: str  # the projection's key
    noun: str  # what one row is, in a message
    query: str  # the GraphQL query that lists the valid ids
    owner: str  # the service that owns the list and tells it
    seeded: tuple[str, ...]  # the ids its owner's demo data loads into an empty store
    noun_ru: str  # "id {noun_ru}" in a Russian message: of what, genitive plural


DISTRICT_LIST = ReferenceList(
    "districts", "district", "districts", "users", tuple(d.id for d in DISTRICTS), "районов"
)
DEPARTMENT_LIST = ReferenceList(
    "departments",
    "department",
    "departments",
    "users",
    tuple(d.id for d in DEPARTMENTS),
    "ведомств",
)
CATEGORY_LIST = ReferenceList(
    "categories",
    "issue category",
    "issueCategories",
    "issues",
    tuple(c.id for c in CATEGORIES),
    "категорий обращений",
)


async def tell(db: Database, reference: ReferenceList, session: Session) -> None:
    """Marks, in the owner's transaction, that it tells `reference` now: called before
    reading the list the event carries (see `TOLD`)."""
    await db[TOLD].update_one(
        {"_id": reference.name},
        {"$inc": {"tellings": 1}, "$set": {"at": utcnow()}},
        upsert=True,
        session=session,
    )


class ProjectedLists:
    """The lists this service was told, each replaced only by one told later."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def replace(
        self, reference: ReferenceList, items: list[Document], at: datetime, session: Session
    ) -> bool:
        """Keeps `items` (told at `at`) unless a list told later is kept; whether it did."""
        lists = self.db[PROJECTED]
        current = await lists.find_one({"_id": reference.name}, {"at": 1}, session=session)
        if current is not None and current["at"] >= at:
            return False  # a late or replayed telling never rolls the list back
        document = {"items": items, "at": at, "count": len(items)}
        await lists.replace_one({"_id": reference.name}, document, upsert=True, session=session)
        return True

    async def ids(self, reference: ReferenceList) -> frozenset[str] | None:
        """The ids told last, or None when no list has arrived yet."""
        found = await self.db[PROJECTED].find_one({"_id": reference.name}, {"items": 1})
        if found is None:
            return None
        return frozenset(item["id"] for item in found["items"])

    async def name_of(
        self, reference: ReferenceList, item_id: str, session: Session | None = None
    ) -> str | None:
        """The name the list told last gives `item_id`, or None (no list yet, or unknown)."""
        found = await self.db[PROJECTED].find_one(
            {"_id": reference.name}, {"items": 1}, session=session
        )
        items = found["items"] if found is not None else []
        return next((item["name"] for item in items if item["id"] == item_id), None)

    async def require_known(
        self, reference: ReferenceList, ids: Sequence[str], *, field: str, seeded: bool
    ) -> None:
        """BAD_USER_INPUT at `field` naming every id the list lacks; `seeded`: before the
        first list arrives, check against the demo rows (see the module's docstring)."""
        if not ids:
            return
        known = await self.ids(reference)
        if known is None and seeded:
            known = frozenset(reference.seeded)
        if known is None:
            raise BadUserInputError(
                f"The list of {reference.noun} ids has not reached this service yet (the "
                f"{reference.owner} service tells it); try again in a few seconds.",
                field=field,
                reason="REFERENCE_DATA_PENDING",
                retryAfterSeconds=RETRY_AFTER_SECONDS,
                ru=(
                    f"Список id {reference.noun_ru} ещё не дошёл до этого сервиса (его сообщает сервис "
                    f"{reference.owner}); попробуйте через несколько секунд."
                ),
            )
        unknown = [i for i in ids if i not in known]
        if unknown:
            named = ", ".join(f"'{i[:40]}'" for i in unknown)
            raise BadUserInputError(
                f"Unknown {reference.noun} id(s): {named}. Valid ids come from the "
                f"`{reference.query}` query (one added in the last few seconds may not be "
                "known here yet: try again shortly).",
                field=field,
                ru=(
                    f"Неизвестные id {reference.noun_ru}: {named}. Допустимые id даёт запрос "
                    f"`{reference.query}` (добавленный в последние секунды здесь может быть ещё неизвестен: "
                    "попробуйте чуть позже)."
                ),
            )
