"""`clock`: UTC to the millisecond, naive datetimes read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from veche_kit.clock import as_utc, utcnow


def test_utcnow_is_utc_and_truncated_to_milliseconds() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    now = utcnow()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before <= now <= datetime.now(UTC)


def test_a_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)  # noqa: DTZ001 - as MongoDB hands it back
    assert as_utc(naive) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_aware_datetime_is_converted_to_utc() -> None:
    moscow = datetime(2026, 1, 2, 6, 0, tzinfo=timezone(timedelta(hours=3)))
    converted = as_utc(moscow)
    assert converted.tzinfo is UTC
    assert converted.hour == 3
    assert converted == moscow
