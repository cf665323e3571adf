"""The observing-day label and the TAI/UTC conversion (a fixed offset: TAI - UTC = 37 s since 2017-01-01)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from datamover.monitoring.timescale import (
    TAI_MINUS_UTC_S,
    day_label,
    observing_day_tai,
    observing_day_utc,
    tai_to_utc,
    utc_to_tai,
)


def unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_tai_minus_utc_is_37_seconds() -> None:
    # IERS Bulletin C: the last leap second was inserted at the end of 2016-12-31, making TAI - UTC = 37 s;
    # none has been announced since. Change `timing.tai_minus_utc_s` in the config if one ever is.
    assert TAI_MINUS_UTC_S == 37.0
    assert tai_to_utc(unix("2025-05-02T12:00:37")) == unix("2025-05-02T12:00:00")
    assert utc_to_tai(unix("2025-05-02T12:00:00")) == unix("2025-05-02T12:00:37")


@pytest.mark.parametrize(
    ("tai", "day"),
    [
        ("2025-05-02T12:00:00", "2025-05-02"),  # noon TAI starts the observing day
        ("2025-05-02T11:59:59.999", "2025-05-01"),
        ("2025-05-03T00:00:00", "2025-05-02"),  # midnight is mid-night: same label as the evening
        ("2025-05-03T11:59:59", "2025-05-02"),
        ("2025-01-01T06:00:00", "2024-12-31"),  # across a year
    ],
)
def test_observing_day_of_tai_timestamps(tai: str, day: str) -> None:
    assert day_label(observing_day_tai(unix(tai))) == day


def test_observing_day_of_utc_instants_shifts_by_37_seconds() -> None:
    # Noon TAI is 11:59:23 UTC: a UTC instant between the two belongs to the new day already.
    assert observing_day_utc(unix("2025-05-02T11:59:22.9")) == date(2025, 5, 1)
    assert observing_day_utc(unix("2025-05-02T11:59:23")) == date(2025, 5, 2)
    assert observing_day_utc(datetime(2025, 5, 2, 11, 59, 30, tzinfo=UTC)) == date(2025, 5, 2)
    # The offset is a parameter (a future leap second): with 38 s, 11:59:22 UTC is noon TAI.
    assert observing_day_utc(unix("2025-05-02T11:59:22"), offset_s=38) == date(2025, 5, 2)
