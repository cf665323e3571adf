"""The transfer_monitoring DAGs run by Airflow (`airflow dags test`, the tasks in their own process):
live exposures waited for by the deferrable sensor, and a crash of the processing tasks mid-night."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.monitoring_support import (
    TAI,
    Monitor,
    by_labels,
    eventually,
    finish,
    kill,
    monitor_namespace,
    observing_day,
    promql,
    scalar,
    start_dag_test,
    tai_seconds,
    wait_until,
)
from tests.monitoring_feed import expected_file, object_names, small_sensors

pytestmark = pytest.mark.integration

WAIT, LATE, SLACK = 15.0, 4.0, 1.0


@pytest.fixture
def live() -> Iterator[Monitor]:
    yield from monitor_namespace(
        **{
            "timing.s3_wait_time_s": WAIT,
            "timing.max_file_late_time_s": LATE,
            "timing.notification_slack_s": SLACK,
            "metrics.push_interval_s": 1.0,
            "evaluation.linger_s": 3.0,
        }
    )


def test_live_exposures_wait_in_the_deferrable_sensor(live: Monitor, tmp_path: Path) -> None:
    conf: dict[str, Any] = {"config": live.overrides}
    feed = live.feed
    sensors = small_sensors(3)
    image_date = (datetime.now(UTC).replace(tzinfo=None) + TAI).strftime("%Y%m%d")
    base = random.randrange(1000, 90000)
    obs = [f"MC_O_{image_date}_{base + i:06d}" for i in range(3)]
    names = {o: object_names(o, sensors) for o in obs}
    arrivals: dict[str, dict[str, datetime]] = {o: {} for o in obs}
    eor_utc: dict[str, datetime] = {}

    def put(o: str, name: str) -> None:
        arrivals[o][name] = feed.object(f"{feed.prefix(o, image_date)}/{name}")
        feed.producer.flush(10)

    # 1. Evaluation of obs[1] alone, before its End Readout exists: the sensor must defer.
    first = start_dag_test(
        "transfer_monitoring_evaluate", conf | {"obs_id": obs[1]}, tmp_path / "evaluate1.log"
    )
    log1 = tmp_path / "evaluate1.log"
    wait_until(lambda: "Pausing task as DEFERRED" in log1.read_text(), 300, 0.5, "the sensor to defer")
    # 2. The ingest, then the night: three exposures now.
    ingest = start_dag_test("transfer_monitoring_ingest", conf | {"idle_exit_s": 20}, tmp_path / "ingest.log")
    wait_until(
        lambda: scalar(live, "SELECT count(*) FROM {s}.ingest_progress") == 2, 300, 0.5, "the ingest to start"
    )
    for o in obs:
        eor_tai = datetime.now(UTC).replace(tzinfo=None) + TAI
        eor_utc[o] = (eor_tai - TAI).replace(tzinfo=UTC)
        feed.end_of_readout(o, image_date, tai_seconds(eor_tai))
        key = f"{feed.prefix(o, image_date)}/{o}_expectedSensors.json"
        feed.put(key, expected_file(o, sensors))
        feed.notify(key, datetime.now(UTC))
    for name in names[obs[0]]:
        put(obs[0], name)  # complete at once
    for name in names[obs[1]][:-1]:
        put(obs[1], name)  # one missing when its window closes; it comes after obs[1] was evaluated
    for name in names[obs[2]][:-1]:
        put(obs[2], name)  # one comes after the window, before obs[2] is evaluated
    feed.flush()
    late = threading.Timer(
        WAIT + 3 - (time.time() - eor_utc[obs[2]].timestamp()), put, (obs[2], names[obs[2]][-1])
    )
    late.start()
    # 3. The trigger fires once obs[1]'s window closed and notifications are ingested past it.
    assert finish(first, 300) == 0, log1.read_text()[-3000:]
    assert "[DAG TEST] Trigger completed" in log1.read_text()
    late.join()
    assert finish(ingest, 300) == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    # 4. obs[1]'s missing object arrives after its evaluation; a catch-up ingest and the next evaluation
    #    (all that is ready: obs[0], obs[2], and obs[1]'s late arrival for the sweep).
    put(obs[1], names[obs[1]][-1])
    feed.flush()
    catch_up = start_dag_test(
        "transfer_monitoring_ingest", conf | {"idle_exit_s": 2}, tmp_path / "ingest2.log"
    )
    assert finish(catch_up, 300) == 0, (tmp_path / "ingest2.log").read_text()[-3000:]
    second = start_dag_test("transfer_monitoring_evaluate", conf, tmp_path / "evaluate2.log")
    assert finish(second, 300) == 0, (tmp_path / "evaluate2.log").read_text()[-3000:]

    records = live.records()
    assert set(records) == set(obs)
    assert records[obs[1]]["evaluated_at"] >= eor_utc[obs[1]] + timedelta(seconds=WAIT + SLACK)
    assert records[obs[0]]["evaluated_at"] >= records[obs[1]]["evaluated_at"]  # second run
    day = observing_day(eor_utc[obs[0]].replace(tzinfo=None) + TAI)
    want_late = 0
    observed: list[float] = []
    for o in obs:
        t0 = eor_utc[o]
        times = {n: t for n, t in arrivals[o].items() if not n.endswith("expectedSensors.json")}
        within = [(t - t0).total_seconds() for t in times.values() if (t - t0).total_seconds() <= WAIT]
        late = sum(1 for t in times.values() if (t - t0).total_seconds() > LATE)
        want_late += late
        got = records[o]
        assert (got["expected"], got["found"], got["missing"], got["late"]) == (
            6,
            len(within),
            6 - len(within),
            late,
        )
        assert math.isclose(got["transfer_time_s"], max(within), abs_tol=2e-3), o  # LastModified has ms
        observed.append(max(within))
    assert records[obs[1]]["late_after_window"] == 1 and records[obs[2]]["late_after_window"] == 1

    sel = f'app="{live.app}",day="{day.isoformat()}"'
    got_late = eventually(
        lambda: by_labels(promql(f"dtm_s3_late_files_total{{{sel}}}")), {(): float(want_late)}
    )
    assert got_late == {(): float(want_late)}
    assert by_labels(promql(f"dtm_s3_late_or_missing_total{{{sel}}}")) == {(): 2.0}
    assert by_labels(promql(f"dtm_s3_transfer_duration_seconds_count{{{sel}}}")) == {(): 3.0}
    (total,) = by_labels(promql(f"dtm_s3_transfer_duration_seconds_sum{{{sel}}}")).values()
    assert math.isclose(total, sum(observed), abs_tol=6e-3)

    check_dashboard(live.app, day.isoformat(), observed, want_late, missing=2, files=feed.sent_notifications)


# ---- the Grafana dashboard -----------------------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "transfer_monitoring.json"
BUCKETS = [3, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 45, 60]
SEED_QUERY = (  # the seed's 98th percentile, character for character
    "histogram_quantile(0.98, sum by(le,app) "
    "(rate(dtm_s3_transfer_duration_seconds_bucket[$__rate_interval])))"
)


def histogram_quantile(q: float, observations: list[float]) -> float:
    """Prometheus' histogram_quantile over the default buckets, restated: the rank's bucket, then linear
    interpolation inside it (from 0 in the first bucket); past the last finite bound, that bound."""
    cumulative = [sum(1 for o in observations if o <= b) for b in BUCKETS]
    rank = q * len(observations)
    for i, count in enumerate(cumulative):
        if count >= rank:
            lower, below = (0.0, 0) if i == 0 else (float(BUCKETS[i - 1]), cumulative[i - 1])
            return lower + (BUCKETS[i] - lower) * (rank - below) / (count - below)
    return float(BUCKETS[-1])


def check_dashboard(app: str, day: str, observed: list[float], late: int, missing: int, files: int) -> None:
    """Run every panel query of the dashboard (its variables set to this test's app and day, and
    $__rate_interval to a range covering the whole test) and compare with the test's own figures.
    Rates of plain counters depend on scrape timing: those are only required to be positive. The
    percentile panels use rate() too, but a quantile does not depend on the rates' common scale."""
    dashboard = json.loads(DASHBOARD.read_text())
    expected: dict[tuple[str, str], Any] = {
        ("Files received", "A"): float(files),
        ("File notifications received per second", "A"): "positive",
        ("Transfer time percentiles", "A"): histogram_quantile(0.98, observed),
        ("Transfer time percentiles", "B"): histogram_quantile(0.9, observed),
        ("Transfer time percentiles", "C"): histogram_quantile(0.5, observed),
        ("Transfer time by observing day", "A"): histogram_quantile(0.98, observed),
        ("Transfer time by observing day", "B"): histogram_quantile(0.5, observed),
        ("Transfer time distribution", "A"): {
            **{f"{b:g}": float(sum(1 for o in observed if o <= b)) for b in BUCKETS},
            "+Inf": float(len(observed)),
        },
        ("Exposures timed", "A"): float(len(observed)),
        ("Late files", "A"): float(late),
        ("Late or missing files", "A"): float(missing),
        ("Late and missing files per second", "A"): "positive",
        ("Late and missing files per second", "B"): "positive",
    }
    seen = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            key = (panel["title"], target["refId"])
            seen.add(key)
            assert key in expected, f"panel query {key} has no expectation in this test"
            expr = target["expr"]
            if key == ("Transfer time percentiles", "A"):
                assert expr == SEED_QUERY  # the seed's own query, unchanged
            query = expr.replace("$__rate_interval", "10m").replace("$app", app).replace("$day", day)
            result = promql(query)
            ours = [r for r in result if r["metric"].get("app", app) == app]
            want = expected[key]
            if isinstance(want, dict):
                assert {r["metric"]["le"]: float(r["value"][1]) for r in ours} == want, key
                continue
            assert len(ours) == 1, (key, result)
            value = float(ours[0]["value"][1])
            if want == "positive":
                assert value > 0, key
            else:
                assert math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9), (key, value, want)
    assert seen == set(expected), set(expected) - seen


# ---- crash safety --------------------------------------------------------------------------------


@pytest.fixture
def reference() -> Iterator[Monitor]:
    yield from monitor_namespace()


@pytest.fixture
def crashed(reference: Monitor) -> Iterator[Monitor]:
    # Same topics and bucket, its own store; small batches so the kill lands mid-ingest.
    yield from monitor_namespace(
        share_inputs_of=reference, **{"ingest.batch_max_messages": 20, "evaluation.linger_s": 3.0}
    )


def past_night(monitor: Monitor, exposures: int) -> None:
    """`exposures` exposures of a past night with random arrival times, missing and resent files."""
    rng = random.Random()
    feed = monitor.feed
    sensors = small_sensors(3)
    day = date(2024, 1, 1) + timedelta(days=rng.randrange(300))
    image_date = day.strftime("%Y%m%d")
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=22)  # TAI
    for i in range(exposures):
        obs_id = f"MC_O_{image_date}_{i + 1:06d}"
        eor_tai = start + timedelta(seconds=30 * i)
        eor_utc = (eor_tai - TAI).replace(tzinfo=UTC)
        prefix = feed.prefix(obs_id, image_date)
        feed.end_of_readout(obs_id, image_date, tai_seconds(eor_tai))
        key = f"{prefix}/{obs_id}_expectedSensors.json"
        feed.put(key, expected_file(obs_id, sensors))
        feed.notify(key, eor_utc)
        for name in object_names(obs_id, sensors):
            if rng.random() < 0.05:
                continue  # never arrives
            offset = rng.choice(
                [rng.uniform(0.5, 9), rng.uniform(0.5, 9), rng.uniform(9, 35), rng.uniform(30, 90)]
            )
            feed.put(f"{prefix}/{name}")
            feed.notify(f"{prefix}/{name}", eor_utc + timedelta(seconds=offset))
            if rng.random() < 0.1:
                feed.notify(f"{prefix}/{name}", eor_utc + timedelta(seconds=offset + 60))  # resent
    feed.flush()


METRICS = [
    "dtm_file_messages_received_total",
    "dtm_s3_late_files_total",
    "dtm_s3_late_or_missing_total",
    "dtm_s3_transfer_duration_seconds_bucket",
    "dtm_s3_transfer_duration_seconds_count",
    "dtm_s3_transfer_duration_seconds_sum",
]


def prometheus_totals(monitor: Monitor) -> dict[tuple[str, ...], float]:
    out = {}
    for name in METRICS:
        for labels, value in by_labels(promql(f'{name}{{app="{monitor.app}"}}'), "day", "le").items():
            out[(name, *labels)] = round(value, 6)
    return out


def comparable(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        k: {f: v for f, v in r.items() if f not in ("evaluated_at", "pushed_at")} for k, r in records.items()
    }


def test_killed_tasks_restart_to_the_same_totals(
    reference: Monitor, crashed: Monitor, tmp_path: Path
) -> None:
    n = 150
    past_night(reference, n)

    # The reference: ingest and evaluate without interruption.
    reference.ingest()
    assert reference.evaluate().evaluated == n

    # The same inputs, with the processing killed mid-night.
    conf: dict[str, Any] = {"config": crashed.overrides, "idle_exit_s": 3}
    ingest = start_dag_test("transfer_monitoring_ingest", conf, tmp_path / "ingest-killed.log")
    wait_until(
        lambda: (scalar(crashed, "SELECT count(*) FROM {s}.exposures") or 0) > 0, 120, what="a first batch"
    )
    kill(ingest)
    ingested = scalar(crashed, "SELECT count(*) FROM {s}.exposures")
    offset = scalar(crashed, "SELECT sum(next_offset) FROM {s}.kafka_offsets")
    assert 0 < ingested < n, "the kill came after the ingest had finished: nothing was tested"
    # The evaluation, started with exposures pending, killed as soon as it holds its lock.
    evaluate = start_dag_test(
        "transfer_monitoring_evaluate", {"config": crashed.overrides}, tmp_path / "ev-killed.log"
    )
    wait_until(
        lambda: scalar(
            crashed,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objid = (hashtext(%s)::bigint & 4294967295)::oid",
            f"dtm:{crashed.cfg.postgres.schema_name}:evaluate",
        ),
        120,
        0.02,
        "the evaluator to start",
    )
    time.sleep(random.uniform(0.0, 0.5))
    kill(evaluate)
    evaluated_at_kill = scalar(crashed, "SELECT count(*) FROM {s}.exposures WHERE evaluated_at IS NOT NULL")

    # Restart: both tasks run again to the end.
    assert finish(start_dag_test("transfer_monitoring_ingest", conf, tmp_path / "ingest.log")) == 0
    assert (
        finish(
            start_dag_test("transfer_monitoring_evaluate", {"config": crashed.overrides}, tmp_path / "ev.log")
        )
        == 0
    )
    print(
        f"killed ingest after {ingested}/{n} exposures (offsets {offset}); "
        f"evaluator killed with {evaluated_at_kill} done"
    )

    assert comparable(crashed.records()) == comparable(reference.records())
    want = prometheus_totals(reference)
    assert want and eventually(lambda: prometheus_totals(crashed), want) == want
