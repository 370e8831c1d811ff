"""Merging fetched data and building representations (no HTTP)."""

from __future__ import annotations

from typing import Any

from veche_gateway.execute import _objects_at, _representations, merge
from veche_gateway.plan_tree import EntityInput, KeyRename


def test_merge_is_deep_and_elementwise() -> None:
    target: dict[str, Any] = {"a": {"b": 1, "list": [{"x": 1}, {"x": 2}]}, "keep": True}
    merge(target, {"a": {"c": 2, "list": [{"y": 1}, {"y": 2}]}})
    assert target == {
        "a": {"b": 1, "c": 2, "list": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]},
        "keep": True,
    }


def test_objects_are_found_through_lists_with_their_paths() -> None:
    raw = {
        "feed": [
            {"_veche_t": "Poll", "x": {"id": 1}},
            {"_veche_t": "Poll", "x": None},
            {"_veche_t": "Issue", "x": {"id": 9}},  # same key under another type
            {"_veche_t": "Poll", "x": {"id": 2}},
        ]
    }
    assert _objects_at(raw, (("feed", "Query"), ("x", "Poll"))) == [
        ({"id": 1}, ("feed", 0, "x")),
        ({"id": 2}, ("feed", 3, "x")),
    ]


def test_representations_are_deduplicated() -> None:
    u1 = {"_veche_t": "User", "_veche_k_id": "u1", "name": "A"}
    u1_again = {"_veche_t": "User", "_veche_k_id": "u1"}
    u2 = {"_veche_t": "User", "_veche_k_id": "u2"}
    other = {"_veche_t": "Poll", "_veche_k_id": "p1"}
    failed = {"_veche_t": "User"}  # the fetch that had its key failed
    raw = {"items": [{"who": u1}, {"who": u2}, {"who": u1_again}, {"who": other}, {"who": failed}]}
    path = (("items", "Query"), ("who", "Item"))
    entity = EntityInput("e0", "reps", path, {"User": (KeyRename("_veche_k_id", "id"),)})
    representations, owners, keyless = _representations(raw, entity)
    assert representations == [
        {"__typename": "User", "id": "u1"},
        {"__typename": "User", "id": "u2"},
    ]
    assert owners == [
        [(u1, ("items", 0, "who")), (u1_again, ("items", 2, "who"))],
        [(u2, ("items", 1, "who"))],
    ]
    assert keyless == [(failed, ("items", 4, "who"), "User")]
