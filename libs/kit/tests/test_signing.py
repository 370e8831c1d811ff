"""`SigningKey`: issued tokens verify with its JWKS; tampering, other keys and bad PEM fail."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from veche_kit.auth import ALGORITHM, Jwks, Principal, TokenVerifier
from veche_kit.clock import utcnow
from veche_kit.errors import UnauthenticatedError
from veche_kit.signing import SigningKey

ISSUER = "veche-users"
BOB = Principal(user_id="u2", roles=frozenset({"CITIZEN"}), district_id=None)


def pem_of(private: object) -> bytes:
    return private.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_key() -> SigningKey:
    return SigningKey.from_pem(pem_of(Ed25519PrivateKey.generate()))


def verifier_of(*keys: SigningKey) -> TokenVerifier:
    async def jwks() -> Jwks:
        return {"keys": [k for key in keys for k in key.jwks()["keys"]]}

    return TokenVerifier(jwks, ISSUER)


def issue(key: SigningKey, ttl: timedelta = timedelta(minutes=5)) -> str:
    return key.issue(BOB, issuer=ISSUER, now=utcnow(), ttl=ttl)


async def test_an_issued_token_verifies_with_the_keys_jwks() -> None:
    key = new_key()
    assert await verifier_of(key).verify(issue(key)) == BOB


def test_the_jwks_names_the_key_and_its_use() -> None:
    key = new_key()
    (jwk,) = key.jwks()["keys"]
    assert jwk["kid"] == key.kid
    assert len(key.kid) == 16
    assert (jwk["use"], jwk["alg"], jwk["kty"], jwk["crv"]) == ("sig", ALGORITHM, "OKP", "Ed25519")
    assert "d" not in jwk  # never the private part


async def test_a_tampered_token_is_refused() -> None:
    key = new_key()
    header, payload, signature = issue(key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["ADMIN"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(UnauthenticatedError, match="not valid"):
        await verifier_of(key).verify(f"{header}.{forged}.{signature}")


async def test_a_token_of_another_key_is_refused() -> None:
    with pytest.raises(UnauthenticatedError, match="unknown key"):
        await verifier_of(new_key()).verify(issue(new_key()))


async def test_an_expired_token_is_refused() -> None:
    key = new_key()
    with pytest.raises(UnauthenticatedError, match="expired"):
        await verifier_of(key).verify(issue(key, ttl=timedelta(seconds=-5)))


def test_the_kid_is_stable_for_a_key() -> None:
    pem = pem_of(Ed25519PrivateKey.generate())
    assert SigningKey.from_pem(pem).kid == SigningKey.from_pem(pem).kid
    assert new_key().kid != new_key().kid


def test_a_key_that_is_not_ed25519_is_refused() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        SigningKey.from_pem(pem_of(generate_private_key(SECP256R1())))


def test_the_development_key_is_made_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = SigningKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load_or_create(path).kid == first.kid
