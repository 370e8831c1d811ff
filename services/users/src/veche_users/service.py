"""Use cases of the users service: load, decide, save with the outbox in one transaction."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from veche_kit import mongo
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    ForbiddenError,
    InsufficientPointsError,
    NotFoundError,
    OutOfStockError,
    RateLimitedError,
    UnauthenticatedError,
)
from veche_kit.events import Event, UserProfileUpdated, UserRegistered, UserRoleChanged
from veche_kit.mongo import Database, Document, Session, in_transaction
from veche_kit.outbox import OutboxRelay, add_event
from veche_kit.signing import SigningKey
from veche_users import domain, store
from veche_users.codes import CodeSender
from veche_users.domain import Role
from veche_users.settings import UsersSettings

MAX_REWARD_TEXT = 500


@dataclass(frozen=True)
class AuthResult:
    user: Document
    access_token: str
    refresh_token: str
    expires_at: datetime


def principal_of(user: Document) -> Principal:
    return Principal(
        user_id=user["_id"],
        roles=frozenset(user["roles"]),
        department_id=user.get("department_id"),
        district_id=user.get("district_id"),
        birth_year=user.get("birth_year"),
        phone_verified=bool(user.get("phone_verified")),
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _profile_event(user: Document) -> UserProfileUpdated:
    return UserProfileUpdated(
        user_id=user["_id"],
        display_name=user["display_name"],
        district_id=user.get("district_id"),
        birth_year=user.get("birth_year"),
        phone_verified=bool(user.get("phone_verified")),
        skills=user.get("skills", []),
        organization=user.get("organization"),
    )


class UsersService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        settings: UsersSettings,
        key: SigningKey,
        sender: CodeSender,
        relay: OutboxRelay | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.key = key
        self.sender = sender
        self.relay = relay
        self.hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._dummy_hash = self.hasher.hash(secrets.token_hex(8))

    # ───────────────────────── helpers ─────────────────────────

    async def _emit(self, session: Session, *events: Event) -> None:
        for event in events:
            await add_event(self.db, event, producer=self.settings.service_name, session=session)

    def _after_commit(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def _hash(self, password: str) -> str:
        # argon2 is deliberately slow: keep it off the event loop.
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, hashed: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _check_district(self, district_id: str | None) -> None:
        if (
            district_id is not None
            and await self.db[store.DISTRICTS].count_documents({"_id": district_id}) == 0
        ):
            raise BadUserInputError(
                f"Unknown district '{district_id[:40]}'; pick one from `districts`.",
                field="districtId",
            )

    async def _check_department(self, department_id: str) -> None:
        if await self.db[store.DEPARTMENTS].count_documents({"_id": department_id}) == 0:
            raise BadUserInputError(
                f"Unknown department '{department_id[:40]}'; pick one from `departments`.",
                field="departmentId",
            )

    async def get_user(self, user_id: str) -> Document:
        user = await self.db[store.USERS].find_one({"_id": user_id})
        if user is None:
            raise NotFoundError(f"No user with id '{user_id[:40]}'.")
        return user

    async def _tokens(self, user: Document, family: str | None = None) -> AuthResult:
        now = utcnow()
        ttl = timedelta(minutes=self.settings.access_token_minutes)
        access = self.key.issue(
            principal_of(user), issuer=self.settings.token_issuer, now=now, ttl=ttl
        )
        refresh = secrets.token_urlsafe(32)
        await self.db[store.REFRESH_TOKENS].insert_one(
            {
                "_id": _digest(refresh),
                "family": family or mongo.new_id(),
                "user_id": user["_id"],
                "created_at": now,
                "expires_at": now + timedelta(days=self.settings.refresh_token_days),
                "used_at": None,
                "revoked": False,
            }
        )
        return AuthResult(user, access, refresh, now + ttl)

    # ───────────────────────── accounts ─────────────────────────

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str,
        district_id: str | None,
        birth_year: int | None,
        phone: str | None = None,
        roles: tuple[Role, ...] = (Role.CITIZEN,),
    ) -> AuthResult:
        email = domain.normalize_email(email)
        domain.check_password(password, email)
        name = domain.clean_name(display_name)
        year = domain.check_birth_year(birth_year)
        phone = domain.normalize_phone(phone) if phone else None
        await self._check_district(district_id)
        now = utcnow()
        user: Document = {
            "_id": mongo.new_id(),
            "email": email,
            "password_hash": await self._hash(password),
            "display_name": name,
            "district_id": district_id,
            "birth_year": year,
            "roles": [r.value for r in roles],
            "department_id": None,
            "organization": None,
            "skills": [],
            "phone": phone,
            "phone_verified": False,
            "points": 0,
            "failed_logins": 0,
            "locked_until": None,
            "created_at": now,
            "updated_at": now,
        }

        async def work(session: Session) -> None:
            await self.db[store.USERS].insert_one(user, session=session)
            await self._emit(
                session,
                UserRegistered(
                    user_id=user["_id"],
                    display_name=name,
                    district_id=district_id,
                    birth_year=year,
                    roles=user["roles"],
                    phone_verified=False,
                ),
            )

        try:
            await in_transaction(self.client, work)
        except DuplicateKeyError as error:
            raise ConflictError(
                "An account with this email already exists; sign in or reset the password.",
                field="email",
            ) from error
        self._after_commit()
        return await self._tokens(user)

    async def login(self, email: str, password: str) -> AuthResult:
        wrong = UnauthenticatedError("The email or the password is wrong.")
        try:
            email = domain.normalize_email(email)
        except BadUserInputError:
            raise wrong from None
        user = await self.db[store.USERS].find_one({"email": email})
        now = utcnow()
        if user is None:
            await self._verify(self._dummy_hash, password)  # same work as a real check
            raise wrong
        locked_until = user.get("locked_until")
        if locked_until is not None and locked_until > now:
            minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
            raise RateLimitedError(
                f"Too many failed sign-ins; try again in {minutes} minute(s).",
                retryAfterSeconds=int((locked_until - now).total_seconds()) + 1,
            )
        if not await self._verify(user["password_hash"], password):
            failed = await self.db[store.USERS].find_one_and_update(
                {"_id": user["_id"]},
                {"$inc": {"failed_logins": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if failed is not None and failed["failed_logins"] >= self.settings.login_max_failures:
                await self.db[store.USERS].update_one(
                    {"_id": user["_id"]},
                    {
                        "$set": {
                            "failed_logins": 0,
                            "locked_until": now + timedelta(minutes=self.settings.lockout_minutes),
                        }
                    },
                )
            raise wrong
        await self.db[store.USERS].update_one(
            {"_id": user["_id"]}, {"$set": {"failed_logins": 0, "locked_until": None}}
        )
        return await self._tokens(user)

    async def refresh(self, token: str) -> AuthResult:
        """Rotates a refresh token; reusing one revokes its whole family."""
        now = utcnow()
        tokens = self.db[store.REFRESH_TOKENS]
        current = await tokens.find_one_and_update(
            {"_id": _digest(token), "used_at": None, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}},
        )
        if current is None:
            known = await tokens.find_one({"_id": _digest(token)})
            if known is not None and known["used_at"] is not None and not known["revoked"]:
                await tokens.update_many({"family": known["family"]}, {"$set": {"revoked": True}})
                raise UnauthenticatedError(
                    "This refresh token was already used; every session it belonged to has been "
                    "signed out. Sign in again."
                )
            raise UnauthenticatedError("The refresh token is not valid any more; sign in again.")
        user = await self.get_user(current["user_id"])
        return await self._tokens(user, family=current["family"])

    async def logout(self, token: str) -> bool:
        known = await self.db[store.REFRESH_TOKENS].find_one({"_id": _digest(token)})
        if known is None:
            return False
        result = await self.db[store.REFRESH_TOKENS].update_many(
            {"family": known["family"], "revoked": False}, {"$set": {"revoked": True}}
        )
        return result.modified_count > 0

    # ───────────────────────── phone ─────────────────────────

    async def request_phone_code(self, caller: Principal, phone: str) -> bool:
        phone = domain.normalize_phone(phone)
        now = utcnow()
        codes = self.db[store.PHONE_CODES]
        previous = await codes.find_one({"_id": caller.user_id})
        wait = self.settings.phone_code_resend_seconds
        if previous is not None and previous["sent_at"] > now - timedelta(seconds=wait):
            raise RateLimitedError(
                f"A code was sent less than {wait} seconds ago; wait before asking again."
            )
        code = f"{secrets.randbelow(1_000_000):06d}"
        await codes.replace_one(
            {"_id": caller.user_id},
            {
                "phone": phone,
                "code_hash": _digest(f"{caller.user_id}:{code}"),
                "sent_at": now,
                "expires_at": now + timedelta(minutes=self.settings.phone_code_minutes),
                "attempts": 0,
            },
            upsert=True,
        )
        await self.sender.send(phone, code)
        return True

    async def verify_phone(self, caller: Principal, code: str) -> Document:
        now = utcnow()
        codes = self.db[store.PHONE_CODES]
        # Count the attempt first (a conditional update), so parallel guesses share one budget.
        entry = await codes.find_one_and_update(
            {"_id": caller.user_id, "attempts": {"$lt": self.settings.phone_code_attempts}},
            {"$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if entry is None:
            if await codes.count_documents({"_id": caller.user_id}) == 0:
                raise BadUserInputError("Ask for a code first with requestPhoneCode.", field="code")
            raise RateLimitedError("Too many wrong codes; ask for a new one with requestPhoneCode.")
        if entry["expires_at"] <= now:
            raise BadUserInputError("The code has expired; ask for a new one.", field="code")
        if not secrets.compare_digest(
            entry["code_hash"], _digest(f"{caller.user_id}:{code.strip()}")
        ):
            left = self.settings.phone_code_attempts - entry["attempts"]
            raise BadUserInputError(f"The code is wrong; {left} attempt(s) left.", field="code")

        async def work(session: Session) -> Document:
            user = await self.db[store.USERS].find_one_and_update(
                {"_id": caller.user_id},
                {
                    "$set": {
                        "phone": entry["phone"],
                        "verified_phone": entry["phone"],
                        "phone_verified": True,
                        "updated_at": now,
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if user is None:
                raise NotFoundError("Your account no longer exists.")
            await codes.delete_one({"_id": caller.user_id}, session=session)
            await self._emit(session, _profile_event(user))
            return user

        try:
            user = await in_transaction(self.client, work)
        except DuplicateKeyError as error:
            raise ConflictError(
                "This phone number is already verified by another account.", field="phone"
            ) from error
        self._after_commit()
        return user

    # ───────────────────────── profile and roles ─────────────────────────

    async def update_profile(self, caller: Principal, changes: dict[str, Any]) -> Document:
        """`changes` holds only the fields the caller sent (None clears where allowed)."""
        update: dict[str, Any] = {}
        if "display_name" in changes:
            update["display_name"] = domain.clean_name(changes["display_name"] or "")
        if "district_id" in changes:
            await self._check_district(changes["district_id"])
            update["district_id"] = changes["district_id"]
        if "birth_year" in changes:
            update["birth_year"] = domain.check_birth_year(changes["birth_year"])
        if "organization" in changes:
            update["organization"] = domain.clean_optional_text(
                changes["organization"], "organization", domain.MAX_ORGANIZATION
            )
        if not update:
            return await self.get_user(caller.user_id)
        update["updated_at"] = utcnow()
        return await self._save_profile(caller.user_id, {"$set": update})

    async def _save_profile(self, user_id: str, change: dict[str, Any], *extra: Event) -> Document:
        async def work(session: Session) -> Document:
            user = await self.db[store.USERS].find_one_and_update(
                {"_id": user_id}, change, return_document=ReturnDocument.AFTER, session=session
            )
            if user is None:
                raise NotFoundError(f"No user with id '{user_id[:40]}'.")
            await self._emit(session, *extra, _profile_event(user))
            return user

        user = await in_transaction(self.client, work)
        self._after_commit()
        return user

    async def become_solver(
        self, caller: Principal, skills: list[str], organization: str | None
    ) -> Document:
        cleaned = domain.clean_skills(skills)
        org = domain.clean_optional_text(organization, "organization", domain.MAX_ORGANIZATION)
        user = await self.get_user(caller.user_id)
        roles = sorted(set(user["roles"]) | {Role.SOLVER.value})
        extra: tuple[Event, ...] = ()
        if Role.SOLVER.value not in user["roles"]:
            extra = (
                UserRoleChanged(
                    user_id=caller.user_id,
                    role=Role.SOLVER.value,
                    granted=True,
                    roles=roles,
                    department_id=user.get("department_id"),
                ),
            )
        return await self._save_profile(
            caller.user_id,
            {
                "$set": {"skills": cleaned, "organization": org, "updated_at": utcnow()},
                "$addToSet": {"roles": Role.SOLVER.value},
            },
            *extra,
        )

    async def change_role(
        self,
        caller: Principal,
        user_id: str,
        role: Role,
        *,
        grant: bool,
        department_id: str | None = None,
    ) -> Document:
        caller.require_role(Role.ADMIN)
        await self.get_user(user_id)  # NOT_FOUND before any other check
        update: dict[str, Any]
        if grant:
            if role is Role.OFFICIAL:
                if not department_id:
                    raise BadUserInputError(
                        "An official needs a department: pass departmentId.", field="departmentId"
                    )
                await self._check_department(department_id)
            elif department_id is not None:
                raise BadUserInputError(
                    "Only the OFFICIAL role takes a department.", field="departmentId"
                )
            update = {"$addToSet": {"roles": role.value}}
            if department_id:
                update["$set"] = {"department_id": department_id}
        else:
            if role is Role.CITIZEN:
                raise BadUserInputError("Every account keeps the CITIZEN role.", field="role")
            if role is Role.ADMIN and user_id == caller.user_id:
                raise ForbiddenError("You cannot revoke your own ADMIN role; ask another admin.")
            update = {"$pull": {"roles": role.value}}
            if role is Role.OFFICIAL:
                update["$set"] = {"department_id": None}
        update.setdefault("$set", {})["updated_at"] = utcnow()

        async def work(session: Session) -> Document:
            saved = await self.db[store.USERS].find_one_and_update(
                {"_id": user_id}, update, return_document=ReturnDocument.AFTER, session=session
            )
            assert saved is not None
            await self._emit(
                session,
                UserRoleChanged(
                    user_id=user_id,
                    role=role.value,
                    granted=grant,
                    roles=saved["roles"],
                    department_id=saved.get("department_id"),
                ),
            )
            return saved

        saved = await in_transaction(self.client, work)
        self._after_commit()
        return saved

    # ───────────────────────── reference data ─────────────────────────

    async def create_reference(
        self, caller: Principal, collection: str, ref_id: str, name: str
    ) -> Document:
        """Adds a district or a department (admins)."""
        caller.require_role(Role.ADMIN)
        ref = ref_id.strip().lower()
        if not domain.is_slug(ref):
            raise BadUserInputError(
                "Use a short id of lowercase letters, digits and dashes.", field="id"
            )
        document = {"_id": ref, "name": domain.clean_name(name, field="name")}
        try:
            await self.db[collection].insert_one(document)
        except DuplicateKeyError as error:
            raise ConflictError(f"'{ref}' exists already.", field="id") from error
        return document

    # ───────────────────────── points and rewards ─────────────────────────

    async def credit_points(
        self,
        user_id: str,
        amount: int,
        reason: str,
        source_event: str,
        session: Session | None = None,
    ) -> bool:
        """Credits once per (user, source event); False when that event was credited before."""

        async def work(s: Session) -> None:
            await self.db[store.LEDGER].insert_one(
                {
                    "_id": mongo.new_id(),
                    "user_id": user_id,
                    "amount": amount,
                    "reason": reason,
                    "source_event": source_event,
                    "at": utcnow(),
                },
                session=s,
            )
            result = await self.db[store.USERS].update_one(
                {"_id": user_id}, {"$inc": {"points": amount}}, session=s
            )
            if result.matched_count == 0:
                raise NotFoundError(f"No user with id '{user_id[:40]}'.")

        try:
            if session is not None:
                await work(session)
            else:
                await in_transaction(self.client, work)
        except DuplicateKeyError:
            return False
        return True

    async def create_reward(
        self, caller: Principal, *, title: str, description: str | None, cost: int, stock: int
    ) -> Document:
        caller.require_role(Role.ADMIN)
        clean_title = domain.clean_optional_text(title, "title", domain.MAX_NAME)
        if not clean_title:
            raise BadUserInputError("Give the reward a title.", field="title")
        if cost < 1:
            raise BadUserInputError("A reward costs at least 1 point.", field="cost")
        if stock < 0:
            raise BadUserInputError("Stock cannot be negative.", field="stock")
        reward = {
            "_id": mongo.new_id(),
            "title": clean_title,
            "description": domain.clean_optional_text(description, "description", MAX_REWARD_TEXT),
            "cost": cost,
            "stock": stock,
            "created_at": utcnow(),
        }
        await self.db[store.REWARDS].insert_one(reward)
        return reward

    async def redeem_reward(self, caller: Principal, reward_id: str) -> Document:
        """Atomic: points never below zero, stock never below zero (conditional updates)."""

        async def work(session: Session) -> Document:
            reward = await self.db[store.REWARDS].find_one_and_update(
                {"_id": reward_id, "stock": {"$gt": 0}},
                {"$inc": {"stock": -1}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if reward is None:
                if (
                    await self.db[store.REWARDS].count_documents(
                        {"_id": reward_id}, session=session
                    )
                    == 0
                ):
                    raise NotFoundError(f"No reward with id '{reward_id[:40]}'.")
                raise OutOfStockError("This reward is out of stock.")
            cost = reward["cost"]
            user = await self.db[store.USERS].find_one_and_update(
                {"_id": caller.user_id, "points": {"$gte": cost}},
                {"$inc": {"points": -cost}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if user is None:
                raise InsufficientPointsError(f"This reward costs {cost} points; you have fewer.")
            redemption = {
                "_id": mongo.new_id(),
                "user_id": caller.user_id,
                "reward_id": reward_id,
                "reward": {k: reward[k] for k in ("_id", "title", "description", "cost")},
                "cost": cost,
                "code": secrets.token_hex(4).upper(),
                "at": utcnow(),
            }
            await self.db[store.REDEMPTIONS].insert_one(redemption, session=session)
            await self.db[store.LEDGER].insert_one(
                {
                    "_id": mongo.new_id(),
                    "user_id": caller.user_id,
                    "amount": -cost,
                    "reason": f"Reward: {reward['title']}",
                    "source_event": f"redemption:{redemption['_id']}",
                    "at": redemption["at"],
                },
                session=session,
            )
            return redemption

        return await in_transaction(self.client, work)

    async def mark_notifications_read(self, caller: Principal, ids: list[str] | None) -> int:
        query: dict[str, Any] = {"user_id": caller.user_id, "read": False}
        if ids is not None:
            query["_id"] = {"$in": ids}
        result = await self.db[store.NOTIFICATIONS].update_many(query, {"$set": {"read": True}})
        return result.modified_count
