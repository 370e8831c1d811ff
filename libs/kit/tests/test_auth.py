"""Token verification: valid, expired, tampered, foreign key, unknown key id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from veche_kit.auth import Jwks, Principal, TokenVerifier
from veche_kit.errors import UnauthenticatedError
from veche_stack.testing import TokenMint

ALICE = Principal(
    user_id="u1",
    roles=frozenset({"CITIZEN", "SOLVER"}),
    district_id="leninsky",
    birth_year=1990,
    phone_verified=True,
)


async def test_valid_token_gives_the_principal() -> None:
    mint = TokenMint()
    assert await mint.verifier().verify(mint.token(ALICE)) == ALICE


async def test_expired_token_is_refused() -> None:
    mint = TokenMint()
    with pytest.raises(UnauthenticatedError, match="expired"):
        await mint.verifier().verify(mint.token(ALICE, ttl_minutes=-1))


async def test_token_of_another_key_is_refused() -> None:
    mint, stranger = TokenMint(), TokenMint()
    with pytest.raises(UnauthenticatedError, match="unknown key"):
        await mint.verifier().verify(stranger.token(ALICE))


async def test_forged_kid_with_foreign_signature_is_refused() -> None:
    mint, stranger = TokenMint(), TokenMint()
    stranger.key = type(stranger.key)(private=stranger.key.private, kid=mint.key.kid)
    with pytest.raises(UnauthenticatedError, match="not valid"):
        await mint.verifier().verify(stranger.token(ALICE))


async def test_wrong_issuer_is_refused() -> None:
    mint = TokenMint(issuer="someone-else")
    verifier = TokenMint().verifier()
    verifier.source = mint.verifier().source
    with pytest.raises(UnauthenticatedError, match="not valid"):
        await verifier.verify(mint.token(ALICE))


async def test_unknown_kid_refetches_the_key_set_once_per_interval() -> None:
    old, new = TokenMint(), TokenMint()
    served = [old.key.jwks()]
    fetches = 0

    async def source() -> Jwks:
        nonlocal fetches
        fetches += 1
        return served[-1]

    verifier = TokenVerifier(source, "veche-users", min_refetch_seconds=0)
    assert (await verifier.verify(old.token(ALICE))).user_id == "u1"
    served.append({"keys": old.key.jwks()["keys"] + new.key.jwks()["keys"]})  # the key rotates in
    assert (await verifier.verify(new.token(ALICE))).user_id == "u1"
    assert fetches == 2
    await verifier.verify(new.token(ALICE))
    assert fetches == 2  # known keys are cached


async def test_the_principal_knows_when_its_token_was_issued() -> None:
    mint = TokenMint()
    start = datetime.now(UTC).replace(microsecond=0)  # `iat` is in whole seconds
    principal = await mint.verifier().verify(mint.token(ALICE))
    assert principal.issued_at is not None
    assert start <= principal.issued_at <= datetime.now(UTC)
