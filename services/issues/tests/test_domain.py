"""Pure rules, no network: deadlines, the workflow table, search terms, input checks."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import pytest

from veche_issues import domain
from veche_issues.domain import Actor, Kind, Status
from veche_issues.seed import HOLIDAYS
from veche_kit.errors import BadUserInputError, ForbiddenError, InvalidTransitionError

MSK = 3


def test_working_days_skip_weekends() -> None:
    # Thursday 2026-10-01 12:00 local (09:00 UTC) + 8 working days: Fri, Mon-Fri, Mon, Tue.
    start = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert domain.add_working_days(start, 8, set(), MSK) == datetime(2026, 10, 13, 9, 0, tzinfo=UTC)
    # Friday + 1 working day is Monday, at the same local time.
    friday = datetime(2026, 10, 2, 7, 30, tzinfo=UTC)
    assert domain.add_working_days(friday, 1, set(), MSK) == datetime(
        2026, 10, 5, 7, 30, tzinfo=UTC
    )
    # Accepted on a Saturday: counting starts on Monday, which counts whole (18:00 local).
    saturday = datetime(2026, 10, 3, 10, 0, tzinfo=UTC)
    assert domain.add_working_days(saturday, 1, set(), MSK) == datetime(
        2026, 10, 5, 15, 0, tzinfo=UTC
    )


def test_working_days_skip_holidays_and_use_the_local_date() -> None:
    holidays = {day for day, _ in HOLIDAYS}
    # Tuesday 2026-11-03 10:00 UTC: 4 November (Wednesday) is a holiday, then Thu 5, Fri 6,
    # the weekend, Mon 9 .. Fri 13, and Mon 16 is the eighth working day.
    start = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    assert domain.add_working_days(start, 8, holidays, MSK) == datetime(
        2026, 11, 16, 10, 0, tzinfo=UTC
    )
    assert domain.add_working_days(start, 8, set(), MSK) == datetime(
        2026, 11, 13, 10, 0, tzinfo=UTC
    )
    # Wednesday 2026-12-30 22:30 UTC is already Thursday 31 December in Kaluga (a holiday);
    # 1-10 January 2027 are holidays and weekends: accepted on a day off, one working day is
    # the whole of Monday 11 January, to 18:00 local (15:00 UTC).
    late = datetime(2026, 12, 30, 22, 30, tzinfo=UTC)
    assert domain.add_working_days(late, 1, holidays, MSK) == datetime(
        2027, 1, 11, 15, 0, tzinfo=UTC
    )
    assert date(2026, 5, 11) in holidays  # 9 May fell on a Saturday


def test_overdue_is_the_deadline_for_the_official_answer() -> None:
    due = datetime(2026, 10, 13, 9, 0, tzinfo=UTC)
    after = datetime(2026, 10, 13, 9, 0, 1, tzinfo=UTC)
    assert not domain.is_overdue(Status.ACCEPTED, due, None, due)
    assert domain.is_overdue(Status.ACCEPTED, due, None, after)
    # An official comment while ACCEPTED is the answer, even a late one.
    assert not domain.is_overdue(Status.ACCEPTED, due, after, after)
    # Work started (IN_PROGRESS) is the answer too; nothing else is waiting for one.
    for status in Status:
        if status is not Status.ACCEPTED:
            assert not domain.is_overdue(status, due, None, after), status
    assert not domain.is_overdue(Status.ACCEPTED, None, None, after)


def test_a_solver_offers_only_in_their_skills() -> None:
    domain.check_skill("potholes", ["lighting", "potholes"])
    with pytest.raises(ForbiddenError, match="not among your solver skills") as lacking:
        domain.check_skill("potholes", ["lighting"])
    assert lacking.value.extensions == {"skill": "potholes"}
    # Skills the users service has not told yet: refused, and the message says to retry.
    with pytest.raises(ForbiddenError, match="try again"):
        domain.check_skill("potholes", [])


def test_bounded_lists_refuse_sizes_above_their_maximum() -> None:
    assert domain.list_size(None, "first", 20, 50) == 20
    assert domain.list_size(50, "first", 20, 50) == 50
    for wrong in (0, 51, -1):
        with pytest.raises(BadUserInputError) as refused:
            domain.list_size(wrong, "first", 20, 50)
        assert refused.value.extensions == {"field": "first"}


def test_transition_refusals_name_the_way() -> None:
    with pytest.raises(InvalidTransitionError) as invalid:
        domain.permitting_rule(Kind.PROBLEM, Status.NEW, Status.RESOLVED, {Actor.OFFICIAL}, None)
    assert invalid.value.extensions["allowed"] == ["ACCEPTED", "REJECTED"]
    assert "ACCEPTED or REJECTED" in invalid.value.message
    with pytest.raises(ForbiddenError):
        domain.permitting_rule(Kind.PROBLEM, Status.NEW, Status.ACCEPTED, {Actor.REPORTER}, None)
    with pytest.raises(BadUserInputError) as missing:
        domain.permitting_rule(Kind.PROBLEM, Status.NEW, Status.REJECTED, {Actor.MODERATOR}, " ")
    assert missing.value.extensions["field"] == "note"
    rule = domain.permitting_rule(
        Kind.INITIATIVE, Status.COLLECTING, Status.UNDER_REVIEW, {Actor.SYSTEM}, None
    )
    assert rule.actors == {Actor.SYSTEM}
    assert domain.next_statuses(Kind.PROBLEM, Status.CLOSED) == []


def test_search_terms_fold_case_yo_and_endings() -> None:
    stored = domain.search_terms("Ёлка во дворе", "Дорога разбита; roads and lights")
    assert "елк" in stored
    assert "дорог" in stored
    assert "road" in stored
    assert "light" in stored
    for query in ("Ёлка", "елка", "ЕЛКИ", "ёлкой"):
        assert domain.query_terms(query) == ["елк"]
    for query in ("Дорога", "дороги", "дорогами"):
        assert domain.query_terms(query) == ["дорог"]
    assert domain.query_terms("  ,,, ") == []


def test_input_checks_name_the_field() -> None:
    with pytest.raises(BadUserInputError) as lat:
        domain.check_point(91, 0)
    assert lat.value.extensions["field"] == "location.lat"
    with pytest.raises(BadUserInputError) as lon:
        domain.check_point(0, -181)
    assert lon.value.extensions["field"] == "location.lon"
    with pytest.raises(BadUserInputError) as many:
        domain.clean_photos([f"https://img.example/{i}.jpg" for i in range(11)])
    assert many.value.extensions["field"] == "photos"
    with pytest.raises(BadUserInputError) as scheme:
        domain.clean_photos(["https://img.example/1.jpg", "ftp://img.example/2.jpg"])
    assert scheme.value.extensions["field"] == "photos.1"
    with pytest.raises(BadUserInputError) as javascript:
        domain.clean_photos(["javascript:alert(1)"])
    assert javascript.value.extensions["field"] == "photos.0"
    with pytest.raises(BadUserInputError) as long:
        domain.clean_text("я" * 201, "title", domain.MAX_TITLE)
    assert long.value.extensions["field"] == "title"


def test_covering_cells_hold_every_point_within_the_radius() -> None:
    rng = random.Random(3)
    centres = [(54.53, 36.27), (0.0, 179.999), (-33.9, -179.99), (89.95, 10.0), (-89.99, 0.0)]
    for lat, lon in centres:
        for radius in (50, 1000, 2000, 20_000, 50_000):
            cells = set(domain.covering_cells(lat, lon, radius))
            if abs(lat) < 80:  # near the poles the coarsest grid may take more cells
                assert len(cells) <= domain.MAX_COVERING_CELLS
            for _ in range(300):
                # A random point at most `radius` away (bearing and distance at random).
                bearing, reach = rng.uniform(0, 2 * math.pi), rng.uniform(0, radius)
                angle = reach / domain.EARTH_RADIUS_METERS
                p1, l1 = math.radians(lat), math.radians(lon)
                p2 = math.asin(
                    math.sin(p1) * math.cos(angle)
                    + math.cos(p1) * math.sin(angle) * math.cos(bearing)
                )
                l2 = l1 + math.atan2(
                    math.sin(bearing) * math.sin(angle) * math.cos(p1),
                    math.cos(angle) - math.sin(p1) * math.sin(p2),
                )
                plat, plon = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
                assert domain.distance_meters(lat, lon, plat, plon) <= radius + 1e-6
                assert cells & set(domain.geo_cells(plat, plon)), (lat, lon, radius, plat, plon)


# Real report titles and the words residents search them by.
SEARCHES = [
    ("Ямы во дворе", ["яма", "ямы", "ям", "ямой"]),
    ("Яма на Кирова", ["ямы", "яма", "ЯМЫ"]),
    ("Разбитые дороги в Терепце", ["дорога", "дороги", "дорогами", "дорог"]),
    ("Нет освещения на Московской", ["освещение", "освещения", "освещении"]),
    ("Не горит уличное освещение", ["освещения", "освещенный"]),
    ("Ёлка упала на тротуар", ["елка", "ёлки", "Елкой"]),
    ("Broken street lights near the school", ["light", "lighting", "lights", "broken"]),
]


@pytest.mark.parametrize(("title", "queries"), SEARCHES)
def test_a_report_is_found_whatever_the_word_ending(title: str, queries: list[str]) -> None:
    stored = domain.search_terms(title)
    for query in queries:
        [term] = domain.query_terms(query)
        assert any(s.startswith(term) for s in stored), (query, term, stored)


def test_unrelated_words_do_not_match() -> None:
    stored = domain.search_terms("Ямы во дворе")
    for query in ("мост", "парк", "свет"):
        [term] = domain.query_terms(query)
        assert not any(s.startswith(term) for s in stored)
