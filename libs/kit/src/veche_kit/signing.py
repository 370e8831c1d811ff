"""Signing access tokens: the key the users service holds, and its JWKS.

Development: an Ed25519 key is generated once into the data directory.
Production: the key comes from settings (`USERS_SIGNING_KEY`, PEM), and the
service refuses to start without one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from veche_kit.auth import ALGORITHM, AUDIENCE, Jwks, Principal


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key (PEM, PKCS8)")
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private=key, kid=hashlib.sha256(raw).hexdigest()[:16])

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The development key at `path`, generated on first use (owner-only permissions)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
        return cls.from_pem(path.read_bytes())

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def jwks(self) -> Jwks:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def issue(self, principal: Principal, *, issuer: str, now: datetime, ttl: timedelta) -> str:
        """A signed access token for `principal`, valid for `ttl`."""
        claims = {
            **principal.to_claims(),
            "iss": issuer,
            "aud": AUDIENCE,
            # To the millisecond: a token issued just after a role change is not stale.
            "iat": round(now.timestamp(), 3),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(claims, self.private, algorithm=ALGORITHM, headers={"kid": self.kid})
