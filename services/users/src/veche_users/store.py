"""The users service's MongoDB collections, their indexes and every query on them.

`UserStore` is the only code that touches the collections: the service asks it
for documents and conditional updates (points and stock never below zero) by
name, the loaders for batches, the consumers for the inbox and projections.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from veche_kit import export, mongo, throttle
from veche_kit.migrations import Migration
from veche_kit.mongo import Database, Document, Session
from veche_kit.outbox import OUTBOX
from veche_kit.retention import Rule
from veche_users.domain import AuditFilter, Role

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
PHONE_CODES = "phone_codes"
EMAIL_CODES = "email_codes"  # e-mail verification and password reset
DISTRICTS = "districts"
DEPARTMENTS = "departments"
REWARDS = "rewards"
REDEMPTIONS = "redemptions"
LEDGER = "points_ledger"
NOTIFICATIONS = "notifications"
CONSENT_VERSIONS = "consent_versions"
CONSENTS = "consents"  # one acceptance per document (152-FZ: a separate record)
# Projections fed by other services' events.
POLL_VOTERS = "poll_voters"
SUPPORTERS = "initiative_supporters"
INITIATIVES = "initiatives"
# Who was erased, when, by whom and why: no personal data (the account keeps none).
ERASURES = "erasures"
# Every staff action of every service (`audit.recorded`), append-only.
AUDIT_LOG = "audit_log"
# Two-factor sign-in: one document per enrolled (or enrolling) account, by user id: the
# encrypted secret, the last time step used, the digests of unused recovery codes.
TOTP = "totp_enrolments"


def retention_rules(read_notification_days: int, audit_days: int) -> list[Rule]:
    """What the users store keeps only for a while (see the README's "Personal data")."""
    return [
        Rule(AUDIT_LOG, "at", timedelta(days=audit_days)),
        Rule(REFRESH_TOKENS, "expires_at", timedelta(0)),
        Rule(PHONE_CODES, "expires_at", timedelta(0)),
        Rule(EMAIL_CODES, "expires_at", timedelta(0)),
        # An enrolment started and never confirmed: its secret goes after a day.
        Rule(TOTP, "pending_at", timedelta(days=1), only={"enrolled_at": None}),
        Rule(NOTIFICATIONS, "at", timedelta(days=read_notification_days), only={"read": True}),
    ]


# What goes with the person: every collection that holds something about them by user id.
_ERASED_WITH_USER = (
    REFRESH_TOKENS,
    EMAIL_CODES,
    LEDGER,
    REDEMPTIONS,
    NOTIFICATIONS,
    POLL_VOTERS,
    SUPPORTERS,
    TOTP,
)
DUPLICATE_KEY = 11000

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        # Set only once a phone is verified: one account per verified phone.
        IndexModel(
            [("verified_phone", ASCENDING)], unique=True, sparse=True, name="verified_phone_unique"
        ),
        IndexModel([("roles", ASCENDING), ("skills", ASCENDING), ("district_id", ASCENDING)]),
    ],
    REFRESH_TOKENS: [
        IndexModel([("family", ASCENDING)]),
        IndexModel([("user_id", ASCENDING)]),
        IndexModel([("expires_at", ASCENDING)]),  # the retention sweep
    ],
    # One ledger entry per user per source event: a credit is never applied twice.
    LEDGER: [
        IndexModel(
            [("user_id", ASCENDING), ("source_event", ASCENDING)], unique=True, name="credit_once"
        ),
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)]),
    ],
    REDEMPTIONS: [IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)])],
    NOTIFICATIONS: [
        IndexModel([("user_id", ASCENDING), ("read", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("read", ASCENDING), ("at", ASCENDING)]),  # the retention sweep
        # One notification per user per source event: a redelivered event adds nothing.
        IndexModel(
            [("user_id", ASCENDING), ("source_event", ASCENDING)], unique=True, name="notify_once"
        ),
    ],
    # A version is published once: a second start cannot add the default again.
    CONSENT_VERSIONS: [
        IndexModel([("version", ASCENDING)], unique=True, name="version_unique"),
        IndexModel([("published_at", DESCENDING)]),
    ],
    CONSENTS: [IndexModel([("user_id", ASCENDING), ("accepted_at", ASCENDING)])],
    PHONE_CODES: [IndexModel([("expires_at", ASCENDING)])],  # the retention sweep
    EMAIL_CODES: [IndexModel([("user_id", ASCENDING)]), IndexModel([("expires_at", ASCENDING)])],
    POLL_VOTERS: [IndexModel([("poll_id", ASCENDING)])],
    AUDIT_LOG: [
        IndexModel([("action", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("actor_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("target_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("at", ASCENDING)]),  # the retention sweep
    ],
    SUPPORTERS: [IndexModel([("issue_id", ASCENDING), ("active", ASCENDING)])],
    TOTP: [IndexModel([("user_id", ASCENDING)])],  # erasure deletes by user id
    **throttle.INDEXES,
}


# How stored documents change shape between releases, oldest first (veche_kit.migrations):
# each service start runs those the store has not had yet.
MIGRATIONS: list[Migration] = []


def _audit_query(wanted: AuditFilter) -> Document:
    query: Document = {}
    for field in ("action", "actor_id", "target_type", "target_id"):
        if (value := getattr(wanted, field)) is not None:
            query[field] = value
    at: Document = {}
    if wanted.since is not None:
        at["$gte"] = wanted.since
    if wanted.until is not None:
        at["$lt"] = wanted.until
    if at:
        query["at"] = at
    return query


class UserStore:
    """The users service's collections: documents in, documents out."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ───────────────────────── accounts ─────────────────────────

    async def get(self, user_id: str) -> Document | None:
        return await self.db[USERS].find_one({"_id": user_id})

    async def by_email(self, email: str) -> Document | None:
        return await self.db[USERS].find_one({"email": email})

    async def by_ids(self, collection: str, ids: list[str]) -> list[Document | None]:
        """Users, districts or departments by id, in that order (for loaders)."""
        return await mongo.find_by_ids(self.db, collection, ids)

    async def add(self, user: Document, session: Session) -> None:
        """DuplicateKeyError when the email is taken (a unique index)."""
        await self.db[USERS].insert_one(user, session=session)

    async def save(
        self,
        user_id: str,
        fields: Document,
        session: Session | None = None,
        *,
        grant: str | None = None,
        revoke: str | None = None,
    ) -> Document | None:
        """Sets `fields` on one account, granting or revoking a role with them; the
        account after it, or None if there is none."""
        change: Document = {"$set": fields}
        if grant is not None:
            change["$addToSet"] = {"roles": grant}
        if revoke is not None:
            change["$pull"] = {"roles": revoke}
        saved: Document | None = await self.db[USERS].find_one_and_update(
            {"_id": user_id}, change, return_document=ReturnDocument.AFTER, session=session
        )
        return saved

    async def page_solvers(
        self, *, skill: str | None, district_id: str | None, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        """Solvers oldest first, with the skill and in the district when given."""
        query: Document = {"roles": Role.SOLVER.value}
        if skill:
            query["skills"] = skill
        if district_id:
            query["district_id"] = district_id
        return await mongo.page(self.db, USERS, query, first=first, after=after, newest_first=False)

    async def poll_audience(
        self,
        district_ids: list[str],
        *,
        min_age: int | None,
        max_age: int | None,
        verified_only: bool,
        year: int,
    ) -> AsyncIterator[str]:
        """Every user a poll's audience admits in `year`, as the polls service decides a
        vote (age = `year` - birth year): living in `district_ids` (when given), of an age
        in the range (when given: a birth year is then needed), with a verified phone
        (when `verified_only`)."""
        query: Document = {"erased_at": None}
        if district_ids:
            query["district_id"] = {"$in": district_ids}
        born: Document = {}
        if min_age is not None:
            born["$lte"] = year - min_age
        if max_age is not None:
            born["$gte"] = year - max_age
        if born:
            query["birth_year"] = {"$ne": None, **born}
        if verified_only:
            query["phone_verified"] = True
        async for document in self.db[USERS].find(query, {"_id": 1}):
            yield document["_id"]

    async def officials_of(self, department_id: str | None) -> AsyncIterator[str]:
        if not department_id:
            return
        cursor = self.db[USERS].find(
            {"roles": Role.OFFICIAL.value, "department_id": department_id}, {"_id": 1}
        )
        async for document in cursor:
            yield document["_id"]

    async def moderate_name(
        self, user_id: str, hidden_at: datetime | None, at: datetime, session: Session
    ) -> bool:
        """A moderator's decision on the display name (hidden since `hidden_at`, or shown
        with None), unless a later decision or a new name came first: False then."""
        result = await self.db[USERS].update_one(
            {
                "_id": user_id,
                "$or": [
                    {"display_name_moderated_at": None},
                    {"display_name_moderated_at": {"$lt": at}},
                ],
            },
            {"$set": {"display_name_hidden": hidden_at, "display_name_moderated_at": at}},
            session=session,
        )
        return bool(result.matched_count)

    # ───────────────────────── refresh tokens ─────────────────────────

    async def add_refresh_token(self, token: Document) -> None:
        await self.db[REFRESH_TOKENS].insert_one(token)

    async def use_refresh_token(self, digest: str, now: datetime) -> Document | None:
        """Marks a live, unused token used; the token, or None when it is not so."""
        found: Document | None = await self.db[REFRESH_TOKENS].find_one_and_update(
            {"_id": digest, "used_at": None, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}},
        )
        return found

    async def refresh_token(self, digest: str) -> Document | None:
        return await self.db[REFRESH_TOKENS].find_one({"_id": digest})

    async def revoke_family(self, family: str, session: Session | None = None) -> int:
        """Revokes every live token of a family; how many were live."""
        result = await self.db[REFRESH_TOKENS].update_many(
            {"family": family, "revoked": False}, {"$set": {"revoked": True}}, session=session
        )
        return result.modified_count

    async def revoke_user_tokens(self, user_id: str, session: Session) -> int:
        """Revokes every live refresh token of an account; how many were live."""
        result = await self.db[REFRESH_TOKENS].update_many(
            {"user_id": user_id, "revoked": False}, {"$set": {"revoked": True}}, session=session
        )
        return result.modified_count

    # ───────────────────────── consent ─────────────────────────

    async def current_consent_version(self) -> Document | None:
        """The version published last: the one a person accepts at sign-up."""
        found: Document | None = await self.db[CONSENT_VERSIONS].find_one(
            {}, sort=[("published_at", DESCENDING), ("_id", DESCENDING)]
        )
        return found

    async def add_consent_version(self, document: Document, session: Session) -> None:
        """DuplicateKeyError when the version exists (a unique index)."""
        await self.db[CONSENT_VERSIONS].insert_one(document, session=session)

    async def add_consent(self, consent: Document, session: Session) -> None:
        await self.db[CONSENTS].insert_one(consent, session=session)

    async def consents_of(self, user_id: str) -> list[Document]:
        """Every acceptance of an account, oldest first."""
        found: list[Document] = (
            await self.db[CONSENTS].find({"user_id": user_id}).sort("accepted_at", 1).to_list()
        )
        return found

    async def withdraw_consents(self, user_id: str, now: datetime, session: Session) -> int:
        """Marks the account's active consents withdrawn; how many were active."""
        result = await self.db[CONSENTS].update_many(
            {"user_id": user_id, "withdrawn_at": None},
            {"$set": {"withdrawn_at": now}},
            session=session,
        )
        return result.modified_count

    # ───────────────────────── one-time codes ─────────────────────────
    # A pending code per key: PHONE_CODES by user id, EMAIL_CODES by "PURPOSE:user id".

    async def code(self, collection: str, key: str) -> Document | None:
        return await self.db[collection].find_one({"_id": key})

    async def put_code(self, collection: str, key: str, code: Document) -> None:
        """The new code replaces the pending one (its attempts start again)."""
        await self.db[collection].replace_one({"_id": key}, code, upsert=True)

    async def try_code(self, collection: str, key: str, max_attempts: int) -> Document | None:
        """Counts one attempt (a conditional update, so parallel guesses share one budget);
        the code after it, or None when there is none or the attempts are spent."""
        entry: Document | None = await self.db[collection].find_one_and_update(
            {"_id": key, "attempts": {"$lt": max_attempts}},
            {"$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return entry

    async def drop_code(self, collection: str, key: str, session: Session | None = None) -> bool:
        """Uses the code up; False when another request used it first (a code works once)."""
        result = await self.db[collection].delete_one({"_id": key}, session=session)
        return result.deleted_count == 1

    # ───────────────────────── two-factor sign-in ─────────────────────────
    # Every change is one conditional update of the account's document: a time step and a
    # recovery code are each used once, however many requests race for them.

    async def totp(self, user_id: str) -> Document | None:
        return await self.db[TOTP].find_one({"_id": user_id})

    async def start_totp(self, user_id: str, pending: str, now: datetime) -> bool:
        """Keeps a new secret waiting for its first code; False when the account is
        enrolled already (then nothing changes)."""
        try:
            await self.db[TOTP].update_one(
                {"_id": user_id, "enrolled_at": None},
                {
                    "$set": {"user_id": user_id, "pending_secret": pending, "pending_at": now},
                    "$setOnInsert": {"secret": None, "last_step": -1, "recovery": []},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def confirm_totp(
        self, user_id: str, pending: str, step: int, recovery: list[str], now: datetime
    ) -> bool:
        """The waiting secret becomes the account's, its step used; False when another
        request confirmed or restarted the enrolment first."""
        result = await self.db[TOTP].update_one(
            {"_id": user_id, "enrolled_at": None, "pending_secret": pending},
            {
                "$set": {
                    "secret": pending,
                    "pending_secret": None,
                    "enrolled_at": now,
                    "last_step": step,
                    "recovery": recovery,
                }
            },
        )
        return result.modified_count == 1

    async def seed_totp(self, user_id: str, secret: str, now: datetime) -> bool:
        """Enrols the account with `secret` unless it is enrolled (the seeded admin)."""
        try:
            await self.db[TOTP].update_one(
                {"_id": user_id, "enrolled_at": None},
                {
                    "$set": {
                        "user_id": user_id,
                        "secret": secret,
                        "pending_secret": None,
                        "enrolled_at": now,
                        "last_step": -1,
                        "recovery": [],
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def use_totp_step(
        self, user_id: str, step: int, recovery: list[str] | None = None
    ) -> bool:
        """Takes the time step (only a later one than the last used); with `recovery`, the
        new recovery codes' digests replace the old in the same update."""
        fields: Document = {"last_step": step}
        if recovery is not None:
            fields["recovery"] = recovery
        result = await self.db[TOTP].update_one(
            {"_id": user_id, "enrolled_at": {"$ne": None}, "last_step": {"$lt": step}},
            {"$set": fields},
        )
        return result.modified_count == 1

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        """Takes one unused recovery code; False when it is not one (or was used)."""
        result = await self.db[TOTP].update_one(
            {"_id": user_id, "enrolled_at": {"$ne": None}, "recovery": digest},
            {"$pull": {"recovery": digest}},
        )
        return result.modified_count == 1

    async def drop_totp(self, user_id: str, session: Session) -> bool:
        """Ends the account's enrolment; False when it had none."""
        result = await self.db[TOTP].delete_one({"_id": user_id}, session=session)
        return result.deleted_count == 1

    # ───────────────────────── reference data ─────────────────────────

    async def exists(self, collection: str, ref_id: str) -> bool:
        """Whether a district or a department with the id exists and is not retired."""
        return await self.db[collection].count_documents({"_id": ref_id, "retired_at": None}) > 0

    async def reference(self, collection: str, ref_id: str) -> Document | None:
        """A district or a department, retired ones too."""
        found: Document | None = await self.db[collection].find_one({"_id": ref_id})
        return found

    async def update_reference(
        self, collection: str, ref_id: str, fields: Document, session: Session
    ) -> Document | None:
        """Sets `fields` on a district or department not retired; it before, or None."""
        found: Document | None = await self.db[collection].find_one_and_update(
            {"_id": ref_id, "retired_at": None}, {"$set": fields}, session=session
        )
        return found

    async def add_reference(
        self, collection: str, document: Document, session: Session | None = None
    ) -> None:
        """DuplicateKeyError when the id is taken."""
        await self.db[collection].insert_one(document, session=session)

    async def references(self, collection: str, session: Session | None = None) -> list[Document]:
        """Every district or department not retired, by name."""
        cursor = self.db[collection].find({"retired_at": None}, session=session).sort("name", 1)
        found: list[Document] = await cursor.to_list()
        return found

    # ───────────────────────── points and rewards ─────────────────────────

    async def credit(self, entry: Document, session: Session) -> bool:
        """Writes a ledger entry and moves the balance; False when there is no such user or
        the account was erased (then nothing stays written). DuplicateKeyError when the
        entry's source event was credited before, before anything else is written."""
        await self.db[LEDGER].insert_one(entry, session=session)
        result = await self.db[USERS].update_one(
            {"_id": entry["user_id"], "erased_at": None},
            {"$inc": {"points": entry["amount"]}},
            session=session,
        )
        if result.matched_count == 0:
            await self.db[LEDGER].delete_one({"_id": entry["_id"]}, session=session)
            return False
        return True

    async def is_erased(self, user_id: str) -> bool:
        found = await self.db[USERS].find_one({"_id": user_id}, {"erased_at": 1})
        return found is not None and found.get("erased_at") is not None

    async def spend(self, user_id: str, cost: int, session: Session) -> bool:
        """Takes `cost` points unless the balance is lower (a conditional update)."""
        user = await self.db[USERS].find_one_and_update(
            {"_id": user_id, "points": {"$gte": cost}},
            {"$inc": {"points": -cost}},
            session=session,
        )
        return user is not None

    async def add_ledger_entry(self, entry: Document, session: Session) -> None:
        await self.db[LEDGER].insert_one(entry, session=session)

    async def rewards(self) -> list[Document]:
        """The catalogue (retired rewards left out), cheapest first."""
        offered = self.db[REWARDS].find({"retired_at": None})
        found: list[Document] = await offered.sort([("cost", 1), ("_id", 1)]).to_list()
        return found

    async def add_reward(self, reward: Document, session: Session) -> None:
        await self.db[REWARDS].insert_one(reward, session=session)

    async def take_reward(self, reward_id: str, session: Session) -> Document | None:
        """One off the stock unless it is out (a conditional update); the reward, or None."""
        reward: Document | None = await self.db[REWARDS].find_one_and_update(
            {"_id": reward_id, "stock": {"$gt": 0}, "retired_at": None},
            {"$inc": {"stock": -1}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return reward

    async def reward_exists(
        self, reward_id: str, session: Session, *, retired: bool = False
    ) -> bool:
        """Whether the reward is offered (`retired`: or was, and has been retired)."""
        query: Document = {"_id": reward_id} if retired else {"_id": reward_id, "retired_at": None}
        return await self.db[REWARDS].count_documents(query, session=session) > 0

    async def update_reward(
        self, reward_id: str, fields: Document, session: Session
    ) -> Document | None:
        """Sets `fields` on a reward not retired; it as it was before, or None."""
        found: Document | None = await self.db[REWARDS].find_one_and_update(
            {"_id": reward_id, "retired_at": None}, {"$set": fields}, session=session
        )
        return found

    async def add_redemption(self, redemption: Document, session: Session) -> None:
        await self.db[REDEMPTIONS].insert_one(redemption, session=session)

    async def page_of(
        self, collection: str, query: Document, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await mongo.page(self.db, collection, query, first=first, after=after)

    async def page_ledger(
        self, user_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await self.page_of(LEDGER, {"user_id": user_id}, first=first, after=after)

    async def page_redemptions(
        self, user_id: str, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await self.page_of(REDEMPTIONS, {"user_id": user_id}, first=first, after=after)

    # ───────────────────────── the inbox ─────────────────────────

    async def page_notifications(
        self, user_id: str, *, unread_only: bool, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        query: Document = {"user_id": user_id}
        if unread_only:
            query["read"] = False
        return await self.page_of(NOTIFICATIONS, query, first=first, after=after)

    async def add_notifications(self, documents: list[Document]) -> int:
        """Inserts a batch; how many were new (one per user per source event, by index).
        Erased accounts get none."""
        ids = list({document["user_id"] for document in documents})
        erased = {
            found["_id"]
            async for found in self.db[USERS].find(
                {"_id": {"$in": ids}, "erased_at": {"$ne": None}}, {"_id": 1}
            )
        }
        documents = [document for document in documents if document["user_id"] not in erased]
        if not documents:
            return 0
        try:
            result = await self.db[NOTIFICATIONS].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            # Already written by an earlier try of this event: those are skipped.
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
            return int(error.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def mark_read(self, user_id: str, ids: list[str] | None) -> int:
        query: Document = {"user_id": user_id, "read": False}
        if ids is not None:
            query["_id"] = {"$in": ids}
        result = await self.db[NOTIFICATIONS].update_many(query, {"$set": {"read": True}})
        return result.modified_count

    # ───────────────────────── projections of other services' events ─────────────────────────

    async def add_poll_voter(self, poll_id: str, user_id: str, session: Session) -> None:
        await self.db[POLL_VOTERS].update_one(
            {"_id": f"{poll_id}:{user_id}"},
            {"$setOnInsert": {"poll_id": poll_id, "user_id": user_id}},
            upsert=True,
            session=session,
        )

    async def poll_voters(self, poll_id: str) -> AsyncIterator[str]:
        async for document in self.db[POLL_VOTERS].find({"poll_id": poll_id}, {"user_id": 1}):
            yield document["user_id"]

    async def set_support(self, issue_id: str, user_id: str, active: bool, at: datetime) -> None:
        """Keeps the newest fact per (issue, user), whatever order events arrive in.

        Outside the transaction: a stale fact hits the unique _id, which would abort one.
        """
        with contextlib.suppress(DuplicateKeyError):
            await self.db[SUPPORTERS].update_one(
                {"_id": f"{issue_id}:{user_id}", "at": {"$lt": at}},
                {"$set": {"issue_id": issue_id, "user_id": user_id, "active": active, "at": at}},
                upsert=True,
            )

    async def supporters(self, issue_id: str) -> list[str]:
        cursor = self.db[SUPPORTERS].find({"issue_id": issue_id, "active": True}, {"user_id": 1})
        return [d["user_id"] async for d in cursor]

    async def put_initiative(
        self, issue_id: str, author_id: str, title: str, session: Session
    ) -> None:
        await self.db[INITIATIVES].update_one(
            {"_id": issue_id},
            {"$set": {"author_id": author_id, "title": title}},
            upsert=True,
            session=session,
        )

    async def initiative(self, issue_id: str) -> Document | None:
        return await self.db[INITIATIVES].find_one({"_id": issue_id})

    # ───────────────────────── the audit log ─────────────────────────

    async def add_audit_entry(self, entry: Document, session: Session) -> None:
        """In the consumer's transaction: once per event, so once per entry."""
        await self.db[AUDIT_LOG].insert_one(entry, session=session)

    async def page_audit(
        self, wanted: AuditFilter, *, first: int, after: str | None
    ) -> tuple[list[Document], bool, int]:
        return await self.page_of(AUDIT_LOG, _audit_query(wanted), first=first, after=after)

    # ───────────────────────── export and erasure ─────────────────────────

    async def export_of(self, user_id: str) -> dict[str, list[Any]]:
        """Every record this service keeps about the person (sessions without their digests)."""
        mine = {"user_id": user_id}
        found = await export.records(
            self.db,
            {
                USERS: {"_id": user_id},
                LEDGER: mine,
                REDEMPTIONS: mine,
                NOTIFICATIONS: mine,
                POLL_VOTERS: mine,
                SUPPORTERS: mine,
                CONSENTS: mine,
            },
        )
        sessions = await export.records(
            self.db, {REFRESH_TOKENS: mine}, hidden=export.INTERNAL_FIELDS | {"_id"}
        )
        # That two-factor sign-in is on and since when; never the secret or code digests.
        secrets = {"secret", "pending_secret", "recovery", "last_step"}
        enrolment = await export.records(
            self.db, {TOTP: mine}, hidden=export.INTERNAL_FIELDS | secrets
        )
        return {**found, **sessions, **enrolment}

    async def erase(self, remains: Document, record: Document, session: Session) -> bool:
        """Replaces the account with `remains` and deletes what is kept about the person,
        including the name in this service's own published events, and records the
        erasure; False when the account was already erased (nothing changes)."""
        user_id = remains["_id"]
        replaced = await self.db[USERS].replace_one(
            {"_id": user_id, "erased_at": None}, remains, session=session
        )
        if replaced.matched_count == 0:
            return False
        for collection in _ERASED_WITH_USER:
            await self.db[collection].delete_many({"user_id": user_id}, session=session)
        await self.db[PHONE_CODES].delete_one({"_id": user_id}, session=session)
        # The consent records stay as the lawful basis of what was done (version, time),
        # without the address they were given from.
        await self.db[CONSENTS].update_many(
            {"user_id": user_id}, {"$set": {"client": None}}, session=session
        )
        outbox = self.db[OUTBOX]
        mine = {"envelope.data.user_id": user_id}
        await outbox.update_many(
            {**mine, "envelope.data.display_name": {"$exists": True}},
            {"$set": {"envelope.data.display_name": remains["display_name"]}},
            session=session,
        )
        await outbox.update_many(
            {**mine, "envelope.data.organization": {"$ne": None}},
            {"$set": {"envelope.data.organization": None}},
            session=session,
        )
        await self.db[ERASURES].insert_one(record, session=session)
        return True
