"""Who is calling: access tokens verified locally against the users service's JWKS.

The users service signs short-lived JWTs (EdDSA, with a `kid`); every service
verifies them with the public keys published at `/.well-known/jwks.json`,
cached, and fetched again when a token names a key id not seen before.

A token outlives what it says: a revoked role or a sign-out would keep working
until it expires. `StaleTokens` is each service's own record of "tokens of user
U issued before T are stale", fed by `user.role_changed` and `user.tokens_revoked`
(users writes its own beside the change); the verifier refuses such tokens with
UNAUTHENTICATED and `reason: TOKEN_STALE`, telling the client to refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from pymongo import ASCENDING, IndexModel

from veche_kit.errors import ForbiddenError, UnauthenticatedError
from veche_kit.events import UserRoleChanged
from veche_kit.mongo import Database, Session

ALGORITHM = "EdDSA"
AUDIENCE = "veche"
Jwks = dict[str, Any]
JwksSource = Callable[[], Awaitable[Jwks]]
STALE_TOKENS = "stale_tokens"
STALE_INDEXES: dict[str, list[IndexModel]] = {
    STALE_TOKENS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")]
}
# Longer than any access token lives: after that a stale mark has nothing left to refuse.
STALE_FOR = timedelta(days=1)
STALE_REASON = "TOKEN_STALE"


@dataclass(frozen=True)
class Principal:
    """The verified caller, as the access token's claims describe them."""

    user_id: str
    roles: frozenset[str]
    department_id: str | None = None
    district_id: str | None = None
    birth_year: int | None = None
    phone_verified: bool = False
    # When the token was issued: facts projected from events after it are newer than its claims.
    issued_at: datetime | None = field(default=None, compare=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "ADMIN" in self.roles

    def require_role(self, *roles: str) -> None:
        """FORBIDDEN unless the caller holds one of `roles`."""
        if not self.roles.intersection(roles):
            wanted = " or ".join(roles)
            raise ForbiddenError(
                f"This needs the {wanted} role.", ru=f"Для этого нужна роль {' или '.join(roles)}."
            )

    def to_claims(self) -> dict[str, Any]:
        return {
            "sub": self.user_id,
            "roles": sorted(self.roles),
            "dept": self.department_id,
            "district": self.district_id,
            "birth_year": self.birth_year,
            "phone_verified": self.phone_verified,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        return cls(
            user_id=str(claims["sub"]),
            roles=frozenset(claims.get("roles") or ()),
            department_id=claims.get("dept"),
            district_id=claims.get("district"),
            birth_year=claims.get("birth_year"),
            phone_verified=bool(claims.get("phone_verified")),
            issued_at=_timestamp(claims.get("iat")),
        )


def _timestamp(value: Any) -> datetime | None:
    """A NumericDate to the millisecond (tokens carry it so), as the store keeps times."""
    if not isinstance(value, int | float):
        return None
    ms = round(value * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


class StaleTokens:
    """A service's record of which users' tokens are stale before when.

    One small document per user who changed (`before`, only ever moved later), read
    once per request and remembered for `cache_seconds`, so a mark takes effect
    everywhere within about a second of its event arriving. Misses at the same moment
    (many subscribers rechecking their tokens on one update) share one query.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 1.0) -> None:
        self.collection = db[STALE_TOKENS]
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, datetime | None]] = {}
        self._asked: dict[str, asyncio.Future[datetime | None]] = {}  # misses, read together
        self._batch: asyncio.Future[None] | None = None

    async def mark(self, user_id: str, before: datetime, session: Session | None = None) -> None:
        """Tokens of `user_id` issued before `before` are stale from now on."""
        await self.collection.update_one(
            {"_id": user_id},
            {"$max": {"before": before, "expires_at": before + STALE_FOR}},
            upsert=True,
            session=session,
        )
        self._cache.pop(user_id, None)

    async def after_role_change(
        self, event: UserRoleChanged, at: datetime, session: Session | None = None
    ) -> None:
        """A revoked role makes older tokens stale; a grant does not (an older token just
        lacks the new role; a department move comes as `user.tokens_revoked`)."""
        if not event.granted:
            await self.mark(event.user_id, at, session)

    async def _before(self, user_id: str) -> datetime | None:
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        waiting = self._asked.get(user_id)
        if waiting is None:
            waiting = self._asked[user_id] = asyncio.get_running_loop().create_future()
            if self._batch is None:
                self._batch = asyncio.ensure_future(self._read_asked())
        return await asyncio.shield(waiting)

    async def _read_asked(self) -> None:
        """Reads every user asked about meanwhile in one query: the subscribers one live
        update resumes all check their tokens at once (one read, not one per user)."""
        await asyncio.sleep(0)  # the rest of this turn of the loop joins
        asked, self._asked, self._batch = self._asked, {}, None
        try:
            cursor = self.collection.find({"_id": {"$in": list(asked)}}, {"before": 1})
            found: dict[str, datetime] = {d["_id"]: d["before"] async for d in cursor}
        except Exception as error:
            for waiting in asked.values():
                waiting.set_exception(error)
            return
        now = time.monotonic()
        if len(self._cache) > 50_000:
            self._cache.clear()  # bounded; a miss costs one small read
        for user_id, waiting in asked.items():
            self._cache[user_id] = (now, found.get(user_id))
            waiting.set_result(found.get(user_id))

    async def is_stale(self, principal: Principal) -> bool:
        before = await self._before(principal.user_id)
        if before is None:
            return False
        return principal.issued_at is None or principal.issued_at < before


def jwks_over_http(url: str, timeout: float = 5.0) -> JwksSource:
    """A JWKS source that fetches the users service's published keys."""

    async def fetch() -> Jwks:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            data: Jwks = response.json()
            return data

    return fetch


class TokenVerifier:
    """Verifies access tokens; refetches the key set at most every `min_refetch_seconds`."""

    def __init__(
        self, source: JwksSource, issuer: str, *, min_refetch_seconds: float = 5.0
    ) -> None:
        self.source = source
        self.issuer = issuer
        self.min_refetch_seconds = min_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        # Set by the service's runtime: which tokens a role change or a sign-out made stale.
        self.stale: StaleTokens | None = None

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if (
                kid not in self._keys
                and time.monotonic() - self._fetched_at >= self.min_refetch_seconds
            ):
                self._fetched_at = time.monotonic()
                try:
                    jwks = await self.source()
                except (httpx.HTTPError, ValueError) as error:
                    raise UnauthenticatedError(
                        "Sign-in keys are unavailable right now; try again in a moment.",
                        ru="Ключи проверки входа сейчас недоступны; попробуйте через минуту.",
                    ) from error
                self._keys = {
                    key["kid"]: jwt.PyJWK(key) for key in jwks.get("keys", []) if "kid" in key
                }
        if kid not in self._keys:
            raise UnauthenticatedError(
                "The access token was signed with an unknown key; sign in again.",
                ru="Токен доступа подписан неизвестным ключом; войдите снова.",
            )
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        """The caller the token names; UNAUTHENTICATED if it is not valid now."""
        key = await self._key(_key_id(token))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise UnauthenticatedError(
                "The access token has expired; refresh it.",
                reason="TOKEN_EXPIRED",
                ru="Срок действия токена доступа истёк; обновите его.",
            ) from error
        except jwt.PyJWTError as error:
            raise UnauthenticatedError(
                "The access token is not valid; sign in again.",
                ru="Токен доступа недействителен; войдите снова.",
            ) from error
        principal = Principal.from_claims(claims)
        if self.stale is not None and await self.stale.is_stale(principal):
            raise UnauthenticatedError(
                "The access token was issued before a change to this account (a role change "
                "or a sign-out); get a new one with refreshToken, or sign in again.",
                reason=STALE_REASON,
                ru="Токен доступа выдан до изменения этого аккаунта (смены роли или выхода); получите новый через refreshToken или войдите снова.",
            )
        return principal


def _key_id(token: str) -> str:
    """The id of the key a token of ours names in its header (before it is verified)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise UnauthenticatedError(
            "The access token is malformed; sign in again.",
            ru="Токен доступа повреждён; войдите снова.",
        ) from error
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise UnauthenticatedError(
            "The access token is not one Veche issued; sign in again.",
            ru="Этот токен доступа выдан не Вече; войдите снова.",
        )
    return kid


def bearer_token(authorization: str | None) -> str | None:
    """The token from an `Authorization: Bearer <token>` header, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError(
            "Send the access token as 'Authorization: Bearer <token>'.",
            ru="Передайте токен доступа как 'Authorization: Bearer <token>'.",
        )
    return token.strip()
