"""Who is calling: access tokens verified locally against the users service's JWKS.

The users service signs short-lived JWTs (EdDSA, with a `kid`); every service
verifies them with the public keys published at `/.well-known/jwks.json`,
cached, and fetched again when a token names a key id not seen before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from veche_kit.errors import ForbiddenError, UnauthenticatedError

ALGORITHM = "EdDSA"
AUDIENCE = "veche"
Jwks = dict[str, Any]
JwksSource = Callable[[], Awaitable[Jwks]]


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
            raise ForbiddenError(f"This needs the {wanted} role.")

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
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


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
                        "Sign-in keys are unavailable right now; try again in a moment."
                    ) from error
                self._keys = {
                    key["kid"]: jwt.PyJWK(key) for key in jwks.get("keys", []) if "kid" in key
                }
        if kid not in self._keys:
            raise UnauthenticatedError(
                "The access token was signed with an unknown key; sign in again."
            )
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        """The caller the token names; UNAUTHENTICATED if it is not valid now."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise UnauthenticatedError("The access token is malformed; sign in again.") from error
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise UnauthenticatedError("The access token is not one Veche issued; sign in again.")
        key = await self._key(header["kid"])
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
            raise UnauthenticatedError("The access token has expired; refresh it.") from error
        except jwt.PyJWTError as error:
            raise UnauthenticatedError("The access token is not valid; sign in again.") from error
        return Principal.from_claims(claims)


def bearer_token(authorization: str | None) -> str | None:
    """The token from an `Authorization: Bearer <token>` header, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("Send the access token as 'Authorization: Bearer <token>'.")
    return token.strip()
