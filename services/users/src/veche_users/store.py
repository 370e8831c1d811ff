"""The users service's MongoDB collections and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from veche_kit.migrations import Migration

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
PHONE_CODES = "phone_codes"
DISTRICTS = "districts"
DEPARTMENTS = "departments"
REWARDS = "rewards"
REDEMPTIONS = "redemptions"
LEDGER = "points_ledger"
NOTIFICATIONS = "notifications"
# Projections fed by other services' events.
POLL_VOTERS = "poll_voters"
SUPPORTERS = "initiative_supporters"
INITIATIVES = "initiatives"

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        # Set only once a phone is verified: one account per verified phone.
        IndexModel(
            [("verified_phone", ASCENDING)], unique=True, sparse=True, name="verified_phone_unique"
        ),
        IndexModel([("roles", ASCENDING), ("skills", ASCENDING), ("district_id", ASCENDING)]),
    ],
    REFRESH_TOKENS: [IndexModel([("family", ASCENDING)]), IndexModel([("user_id", ASCENDING)])],
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
        # One notification per user per source event: a redelivered event adds nothing.
        IndexModel(
            [("user_id", ASCENDING), ("source_event", ASCENDING)], unique=True, name="notify_once"
        ),
    ],
    POLL_VOTERS: [IndexModel([("poll_id", ASCENDING)])],
    SUPPORTERS: [IndexModel([("issue_id", ASCENDING), ("active", ASCENDING)])],
}

# How stored documents change shape between releases, oldest first (veche_kit.migrations):
# each service start runs those the store has not had yet.
MIGRATIONS: list[Migration] = []
