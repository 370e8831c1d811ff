"""`veche_kit.export`: records become plain JSON; only the owner may export."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId

from veche_kit.auth import Principal
from veche_kit.errors import ForbiddenError
from veche_kit.export import plain, require_owner


def test_plain_turns_store_values_into_json_values() -> None:
    oid = ObjectId()
    at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    value = {"_id": oid, "at": at, "raw": b"\x01\xff", "nested": [{"at": at}, (1, "a")]}
    assert plain(value) == {
        "_id": str(oid),
        "at": "2026-12-02T10:00:00+00:00",
        "raw": "01ff",
        "nested": [{"at": "2026-12-02T10:00:00+00:00"}, [1, "a"]],
    }


def test_only_the_owner_exports() -> None:
    caller = Principal(user_id="u1", roles=frozenset({"ADMIN"}))
    require_owner(caller, "u1")
    with pytest.raises(ForbiddenError):
        require_owner(caller, "u2")  # not even an admin reads another person's export
