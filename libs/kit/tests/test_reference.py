"""`reference`: the demo city's rows hold together (ids unique, categories routed)."""

from __future__ import annotations

import re

from veche_kit.reference import CATEGORIES, DEPARTMENTS, DISTRICTS

SLUG = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def test_ids_are_unique_slugs_and_names_are_given() -> None:
    for rows in (DISTRICTS, DEPARTMENTS, CATEGORIES):
        ids = [row.id for row in rows]
        assert len(ids) == len(set(ids))
        assert all(SLUG.match(id_) for id_ in ids), ids
        assert all(row.name.strip() for row in rows)


def test_every_category_is_routed_to_a_known_department() -> None:
    departments = {d.id for d in DEPARTMENTS}
    assert {c.department_id for c in CATEGORIES} <= departments


def test_rows_are_immutable_tuples() -> None:
    assert isinstance(DISTRICTS, tuple)
    assert DISTRICTS[0]._fields == ("id", "name")
    assert CATEGORIES[0]._fields == ("id", "name", "department_id")
