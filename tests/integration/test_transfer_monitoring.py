"""Transfer monitoring over the real services: Kafka -> PostgreSQL -> evaluation -> Pushgateway -> Prometheus.

A night set in the past (so every wait window has closed and the results are exact): exposures complete,
late, with missing files, with duplicate notifications, with an object after the window, with a lost
notification, without an expected-sensors file, with a replayed End Readout, with a negative transfer time,
and two on either side of the observing-day boundary. The expectations are computed here from the
scenario's own numbers, then compared with the per-exposure records in PostgreSQL and with what Prometheus
returns for PromQL queries.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.integration.monitoring_support import (
    TAI,
    Monitor,
    by_labels,
    eventually,
    monitor_namespace,
    observing_day,
    promql,
    tai_seconds,
)
from tests.monitoring_feed import expected_file, notification, object_names, small_sensors

pytestmark = pytest.mark.integration

WAIT, LATE = 30.0, 10.0
BUCKETS = [3, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 45, 60]


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    yield from monitor_namespace()


@dataclass
class Exposure:
    """One exposure of the scenario and what it should yield, worked out from its own numbers."""

    obs_id: str
    eor_tai: datetime  # naive, on the TAI scale
    offsets: list[float | None]  # per expected object: first arrival - end of readout (None: never)
    duplicates: bool = False  # every object notified a second time, 40 s later
    expected_file: bool = True
    lost: int | None = None  # index of an object stored without a notification (arrives "now")
    replay_eor: bool = False
    sent_times: list[datetime] = field(default_factory=list)  # eventTime of every notification sent

    @property
    def eor_utc(self) -> datetime:
        return (self.eor_tai - TAI).replace(tzinfo=UTC)

    @property
    def day(self) -> date:
        return observing_day(self.eor_tai)

    def expectation(self) -> dict[str, object]:
        arrived = [o for i, o in enumerate(self.offsets) if o is not None and i != self.lost]
        within = [o for o in arrived if o <= WAIT]
        late = sum(1 for o in arrived if o > LATE) + (1 if self.lost is not None else 0)  # "now" is late
        n = len(self.offsets)
        return {
            "expected": n if self.expected_file else None,
            "found": len(within),
            "missing": n - len(within) if self.expected_file else 0,
            "late": late,
            "transfer_time_s": max(within) if within else None,
        }


def night() -> tuple[list[Exposure], date]:
    """The scenario: a random past night (a fresh day label every run)."""
    base_day = date(2024, 1, 1) + timedelta(days=random.randrange(0, 300))
    midnight = datetime.combine(base_day + timedelta(days=1), datetime.min.time())  # naive TAI
    number = iter(range(random.randrange(1000, 9000), 10**6))
    img = (base_day + timedelta(days=1)).strftime("%Y%m%d")

    def exp(at: datetime, offsets: list[float | None], **kw: object) -> Exposure:
        return Exposure(f"MC_O_{img}_{next(number):06d}", at, offsets, **kw)  # type: ignore[arg-type]

    t = midnight + timedelta(hours=3)
    exposures = [
        exp(t, [1.0, 1.5, 2.0, 2.5, 3.0, 6.2]),  # complete
        exp(t + timedelta(minutes=1), [2, 3, 4, 5, 12.5, 15.0]),  # two late within the window
        exp(t + timedelta(minutes=2), [2, 3, 4, 5, None, None]),  # two missing
        exp(t + timedelta(minutes=3), [1, 2, 3, 4, 5, 6], duplicates=True),  # every file resent
        exp(t + timedelta(minutes=4), [1, 2, 3, 4, 5, 45.0]),  # one after the window: missing and late
        exp(t + timedelta(minutes=5), [1, 2, 3, 4, 5, 6], expected_file=False),
        exp(t + timedelta(minutes=6), [1, 2, 3, 4, 5, 6], lost=2),  # one notification lost
        exp(t + timedelta(minutes=7), [1, 2, 3, 4, 5, 6], replay_eor=True),
        exp(t + timedelta(minutes=8), [-3.0, -2.5, -2, -1.5, -1.2, -1.0]),  # clocks off: not observed
        # Either side of noon TAI, the observing-day boundary:
        exp(midnight + timedelta(hours=12, seconds=0.5), [1, 2, 3, 4, 5, 7.5]),
        exp(midnight + timedelta(hours=11, minutes=59, seconds=59.5), [1, 2, 3, 4, 5, 8.5]),
    ]
    return exposures, base_day


def feed_night(monitor: Monitor, exposures: list[Exposure]) -> Counter[date]:
    """Store and announce the night; returns the file notifications sent per observing day."""
    feed = monitor.feed
    sensors = small_sensors(3)
    sent: Counter[date] = Counter()

    def notify(key: str, when: datetime) -> None:
        feed.notify(key, when)
        sent[observing_day((when + TAI).replace(tzinfo=None))] += 1

    for e in exposures:
        image_date = e.obs_id.split("_")[2]
        prefix = feed.prefix(e.obs_id, image_date)
        feed.end_of_readout(e.obs_id, image_date, tai_seconds(e.eor_tai))
        if e.replay_eor:
            feed.end_of_readout(e.obs_id, image_date, tai_seconds(e.eor_tai), seq=2)
        if e.expected_file:
            key = f"{prefix}/{e.obs_id}_expectedSensors.json"
            feed.put(key, expected_file(e.obs_id, sensors))
            notify(key, e.eor_utc + timedelta(seconds=0.5))
        for i, (name, offset) in enumerate(zip(object_names(e.obs_id, sensors), e.offsets, strict=True)):
            if offset is None:
                continue
            key = f"{prefix}/{name}"
            feed.put(key)
            if i == e.lost:
                continue
            notify(key, e.eor_utc + timedelta(seconds=offset))
            if e.duplicates:
                notify(key, e.eor_utc + timedelta(seconds=offset + 40))
    # Noise that must be skipped: malformed messages, another bucket's notification.
    feed.raw(feed.file_topic, b"{not json")
    feed.raw(feed.eor_topic, b'{"imageName": "MC_O_20250101_000001"}')
    other = notification("someone-else", "LSSTCam/20250101/x/y.fits", datetime.now(UTC), 1, "0" * 32)
    feed.raw(feed.file_topic, other)
    return sent


def expected_metrics(exposures: list[Exposure]) -> dict[str, dict[str, float]]:
    """Per day label: late, late_or_missing, histogram buckets (cumulative), count and sum."""
    out: dict[str, dict[str, float]] = {}
    for e in exposures:
        x = e.expectation()
        m = out.setdefault(e.day.isoformat(), Counter())  # type: ignore[arg-type]
        m["late"] += x["late"]  # type: ignore[operator]
        m["late_or_missing"] += x["missing"]  # type: ignore[operator]
        t = x["transfer_time_s"]
        if t is not None and t > 0:  # type: ignore[operator]
            m["count"] += 1
            m["sum"] += t  # type: ignore[operator]
            for b in BUCKETS:
                m[f"le={b}"] += 1 if t <= b else 0  # type: ignore[operator]
            m["le=+Inf"] += 1
    return out


def test_a_night_in_postgres_and_prometheus(monitor: Monitor) -> None:
    exposures, _ = night()
    sent = feed_night(monitor, exposures)

    stats = monitor.ingest()
    assert stats.malformed == 2 and stats.ignored == 1
    assert stats.notifications == sum(sent.values())
    assert stats.new_exposures == len(exposures)  # the replayed End Readout made no second exposure
    result = monitor.evaluate()
    assert result.evaluated == len(exposures)
    assert result.listed_only == 1  # the object whose notification was lost

    # The per-exposure records users query.
    records = monitor.records()
    assert set(records) == {e.obs_id for e in exposures}
    for e in exposures:
        want = e.expectation()
        got = records[e.obs_id]
        assert got["day"] == e.day, e.obs_id
        for name in ("expected", "found", "missing", "late"):
            assert got[name] == want[name], (e.obs_id, name, got[name], want[name])
        if want["transfer_time_s"] is None:
            assert got["transfer_time_s"] is None
        else:
            assert math.isclose(got["transfer_time_s"], want["transfer_time_s"], abs_tol=1e-6), e.obs_id
        assert got["pushed_at"] is not None
    assert records[exposures[4].obs_id]["late_after_window"] == 1

    # The same figures from Prometheus.
    app = monitor.app
    want_files = {(d.isoformat(),): float(n) for d, n in sent.items()}
    got_files = eventually(
        lambda: by_labels(promql(f'dtm_file_messages_received_total{{app="{app}"}}'), "day"), want_files
    )
    assert got_files == want_files
    metrics = expected_metrics(exposures)
    assert len(metrics) == 2  # both sides of the day boundary
    for day, m in metrics.items():
        sel = f'app="{app}",day="{day}"'
        late = eventually(
            lambda sel=sel: by_labels(promql(f"dtm_s3_late_files_total{{{sel}}}")), {(): m["late"]}
        )
        assert late == {(): m["late"]}, day
        missing = by_labels(promql(f"dtm_s3_late_or_missing_total{{{sel}}}"))
        assert missing == {(): m["late_or_missing"]}, day
        buckets = by_labels(promql(f"dtm_s3_transfer_duration_seconds_bucket{{{sel}}}"), "le")
        # The Pushgateway re-exposes `le` in Go's float format ("10", where prometheus_client wrote "10.0").
        assert buckets == {(f"{b:g}",): m[f"le={b}"] for b in BUCKETS} | {("+Inf",): m["le=+Inf"]}
        count = by_labels(promql(f"dtm_s3_transfer_duration_seconds_count{{{sel}}}"))
        assert count == {(): m["count"]}
        (total,) = by_labels(promql(f"dtm_s3_transfer_duration_seconds_sum{{{sel}}}")).values()
        assert math.isclose(total, m["sum"], abs_tol=1e-6)

    # A rerun with nothing new, and a replayed End Readout, change no total.
    monitor.feed.end_of_readout(
        exposures[0].obs_id, exposures[0].obs_id.split("_")[2], tai_seconds(exposures[0].eor_tai), seq=3
    )
    again = monitor.ingest()
    assert again.new_exposures == 0 and again.end_readouts == 1
    assert monitor.evaluate().evaluated == 0
    assert monitor.records() == records
    assert by_labels(promql(f'dtm_file_messages_received_total{{app="{app}"}}'), "day") == want_files
