"""Token verification: valid, expired, tampered, foreign key, unknown key id, and tokens
made stale by a role change or a sign-out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import monitoring

from veche_kit.auth import STALE_INDEXES, Jwks, Principal, StaleTokens, TokenVerifier
from veche_kit.clock import utcnow
from veche_kit.errors import UnauthenticatedError
from veche_kit.events import UserRoleChanged
from veche_kit.mongo import Database, connect, ensure_indexes
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


async def test_iat_is_kept_to_the_millisecond() -> None:
    mint = TokenMint()
    principal = await mint.verifier().verify(mint.token(ALICE))
    assert principal.issued_at is not None
    assert principal.issued_at.microsecond % 1000 == 0


@pytest.fixture
async def stale_db(mongo_server_url: str) -> AsyncIterator[Database]:
    client = connect(mongo_server_url)
    db = client[f"kit_{uuid.uuid4().hex[:8]}"]
    await ensure_indexes(db, dict(STALE_INDEXES))
    yield db
    await client.close()


async def test_tokens_issued_before_a_mark_are_stale(stale_db: Database) -> None:
    mint = TokenMint()
    verifier = mint.verifier()
    verifier.stale = StaleTokens(stale_db, cache_seconds=0)
    old = mint.token(ALICE)
    other_user = mint.token(Principal(user_id="u2", roles=frozenset({"CITIZEN"})))
    await asyncio.sleep(0.01)
    await StaleTokens(stale_db).mark("u1", utcnow())
    with pytest.raises(UnauthenticatedError, match="refreshToken") as refused:
        await verifier.verify(old)
    assert refused.value.extensions == {"reason": "TOKEN_STALE"}
    assert (await verifier.verify(other_user)).user_id == "u2"
    await asyncio.sleep(0.01)
    assert await verifier.verify(mint.token(ALICE)) == ALICE  # issued after: fine
    # A late, older mark (a redelivered event) never moves the line back.
    await StaleTokens(stale_db).mark("u1", utcnow() - timedelta(hours=1))
    with pytest.raises(UnauthenticatedError):
        await verifier.verify(old)


@pytest.mark.parametrize(
    ("granted", "role", "stale"),
    [(False, "SOLVER", True), (True, "SOLVER", False), (False, "OFFICIAL", True)],
)
async def test_which_role_changes_make_tokens_stale(
    stale_db: Database, granted: bool, role: str, stale: bool
) -> None:
    mint = TokenMint()
    verifier = mint.verifier()
    verifier.stale = StaleTokens(stale_db, cache_seconds=0)
    token = mint.token(ALICE)
    await asyncio.sleep(0.01)
    change = UserRoleChanged(
        user_id="u1", role=role, granted=granted, roles=["CITIZEN"], department_id=None
    )
    await verifier.stale.after_role_change(change, utcnow())
    if stale:
        with pytest.raises(UnauthenticatedError):
            await verifier.verify(token)
    else:
        assert await verifier.verify(token) == ALICE


class _Finds(monitoring.CommandListener):
    """Counts the `find` commands the client sends."""

    def __init__(self) -> None:
        self.finds = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.finds += event.command_name == "find"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_concurrent_checks_of_many_users_share_one_read(mongo_server_url: str) -> None:
    listener = _Finds()
    client = connect(mongo_server_url, listeners=[listener])
    try:
        db = client[f"kit_{uuid.uuid4().hex[:8]}"]
        stale = StaleTokens(db)
        await stale.mark("u-7", utcnow())
        issued = utcnow() - timedelta(minutes=1)
        users = [
            Principal(user_id=f"u-{i}", roles=frozenset(), issued_at=issued) for i in range(50)
        ]
        before = listener.finds
        found = await asyncio.gather(*(stale.is_stale(p) for p in users))
        assert listener.finds - before == 1  # one query for the fifty, not fifty
        assert [p.user_id for p, s in zip(users, found, strict=True) if s] == ["u-7"]
        await asyncio.gather(*(stale.is_stale(p) for p in users))
        assert listener.finds - before == 1  # then remembered
    finally:
        await client.close()
