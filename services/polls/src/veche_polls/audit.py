"""A poll's public record of trust: every ballot as an anonymous record in an
append-only Merkle log (see `merkle`), and a signed tree head per fold that binds
the log to the counters the results are read from.

A record holds the poll, the answers and a commitment H(ballot id || salt); the
salt is given only to the voter (the receipt), so only they can point at their
record. No voter id, no cast time, no district or age group: per ballot these
could identify people in small or targeted polls. District and age-group
subtotals are published in the heads, and only for groups of at least
`min_group` ballots.

Everything here is pure: the store keeps `ballot_records`, `tree_heads` and each
poll's frontier (`audit_logs`) and calls `append` inside the fold's transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from veche_kit.signing import SigningKey
from veche_polls.merkle import Frontier, leaf_hash


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_salt() -> str:
    return secrets.token_hex(16)


def commitment(ballot_id: str, salt: str) -> str:
    return hashlib.sha256(f"{ballot_id}{salt}".encode()).hexdigest()


def ballot_receipt_fields(ballot_id: str, poll: Mapping[str, Any]) -> dict[str, Any]:
    """What an audited ballot carries: its commitment, and the salt that opens it
    unless the poll's author turned receipts off (then nobody can open it)."""
    if not poll.get("audit", True):
        return {}
    salt = new_salt()
    fields: dict[str, Any] = {"commitment": commitment(ballot_id, salt)}
    if poll.get("receipts", True):
        fields["salt"] = salt
    return fields


def public_record(
    poll_id: str, answers: Sequence[Mapping[str, Any]], commit: str
) -> dict[str, Any]:
    """What the world sees of a ballot."""
    return {
        "poll": poll_id,
        "commitment": commit,
        "answers": [
            {
                "question": a["question_id"],
                "options": sorted(a.get("option_ids") or []),
                **({"value": a["value"]} if a.get("value") is not None else {}),
            }
            for a in answers
        ],
    }


def record_hash(record: Mapping[str, Any]) -> bytes:
    return leaf_hash(canonical(record))


def public_tallies(tally: Mapping[str, Any], min_group: int) -> dict[str, Any]:
    """The counters as published: overall, and each district and age group of at
    least `min_group` ballots (smaller groups are left out, not rounded)."""
    published: dict[str, Any] = {"total": tally.get("total", 0), "q": tally.get("q", {})}
    for scope in ("d", "a"):
        groups = {
            key: counters
            for key, counters in (tally.get(scope) or {}).items()
            if counters.get("total", 0) >= min_group
        }
        if groups:
            published[scope] = groups
    return published


@dataclass(frozen=True)
class TreeHead:
    """A signed statement: at `tree_size` records the log's root is `root_hash` and
    the counters are `tallies`."""

    poll_id: str
    tree_size: int
    root_hash: str  # hex
    tallies: dict[str, Any]
    signed_at: datetime
    key_id: str
    signature: str  # base64url of the Ed25519 signature over `payload()`

    def statement(self) -> dict[str, Any]:
        return {
            "poll": self.poll_id,
            "treeSize": self.tree_size,
            "rootHash": self.root_hash,
            "tallies": self.tallies,
            "signedAt": self.signed_at.isoformat(),
            "keyId": self.key_id,
        }

    def payload(self) -> bytes:
        return canonical(self.statement())

    @classmethod
    def sign(
        cls,
        key: SigningKey,
        poll_id: str,
        frontier: Frontier,
        tallies: dict[str, Any],
        at: datetime,
    ) -> TreeHead:
        unsigned = cls(poll_id, frontier.size, frontier.root().hex(), tallies, at, key.kid, "")
        signature = base64.urlsafe_b64encode(key.private.sign(unsigned.payload())).decode()
        return dataclasses.replace(unsigned, signature=signature)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(base64.urlsafe_b64decode(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Appended:
    """What one fold adds to a poll's log."""

    records: list[dict[str, Any]]  # with `index` and `hash` (hex) beside the record
    frontier: Frontier


def append(frontier: Frontier, poll_id: str, ballots: Sequence[Mapping[str, Any]]) -> Appended:
    """The records of `ballots` (in cast order) appended after `frontier`."""
    records = []
    for ballot in ballots:
        record = public_record(poll_id, ballot["answers"], ballot["commitment"])
        digest = record_hash(record)
        records.append({"index": frontier.size, "hash": digest.hex(), "record": record})
        frontier = frontier.append(digest)
    return Appended(records, frontier)
