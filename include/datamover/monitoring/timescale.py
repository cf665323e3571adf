"""Time scales and the observing-day label.

The camera stamps `timestampEndOfReadout` as Unix-style seconds on the TAI scale; Ceph stamps objects
and notifications in UTC. TAI - UTC has been 37 s since 2017-01-01 and no leap second has been announced
since, so the conversion is a fixed offset (`TAI_MINUS_UTC_S`, overridable in the config should one be
announced) rather than a leap-second table that would need the internet to stay current.

The observing day (the `day` label of every metric) is the TAI calendar date of the instant 12 hours
before the timestamp: a night's exposures, from noon to noon TAI, share one label.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

TAI_MINUS_UTC_S = 37.0
OBSERVING_DAY_SHIFT = timedelta(hours=12)


def tai_to_utc(tai_seconds: float, offset_s: float = TAI_MINUS_UTC_S) -> float:
    """Unix seconds (UTC) of a TAI-scale timestamp."""
    return tai_seconds - offset_s


def utc_to_tai(utc_seconds: float, offset_s: float = TAI_MINUS_UTC_S) -> float:
    return utc_seconds + offset_s


def utc_datetime(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)


def observing_day_tai(tai_seconds: float) -> date:
    """The observing day of a TAI-scale timestamp: the TAI calendar date of (t - 12 h)."""
    return (datetime.fromtimestamp(tai_seconds, UTC) - OBSERVING_DAY_SHIFT).date()


def observing_day_utc(when: datetime | float, offset_s: float = TAI_MINUS_UTC_S) -> date:
    """The observing day of a UTC instant (a notification's eventTime, the current time)."""
    utc_seconds = when.timestamp() if isinstance(when, datetime) else when
    return observing_day_tai(utc_to_tai(utc_seconds, offset_s))


def day_label(day: date) -> str:
    """The metric label value: `YYYY-MM-DD`."""
    return day.isoformat()
