"""transfer_monitoring the way it runs in production: the continuous ingest and evaluate DAGs unpaused on
the real scheduler, the sensor deferred to the real triggerer, a per-exposure run triggered through the
REST API; live exposures fed meanwhile, results read back from PostgreSQL and Prometheus."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import AirflowStack, wait_for
from tests.integration.monitoring_support import (
    TAI,
    Monitor,
    by_labels,
    eventually,
    monitor_namespace,
    observing_day,
    promql,
    scalar,
    tai_seconds,
    write_deployment_config,
)
from tests.monitoring_feed import expected_file, object_names, small_sensors

pytestmark = pytest.mark.e2e

WAIT, SLACK = 10.0, 1.0
CONTINUOUS = ("transfer_monitoring_ingest", "transfer_monitoring_evaluate")
ALL = (*CONTINUOUS, "transfer_monitoring_exposure")


@pytest.fixture
def deployed(airflow_stack: AirflowStack) -> Iterator[tuple[AirflowStack, Monitor]]:
    """A namespace of its own, written into the stack's deployment config folder (so the continuous runs,
    which take no conf, use it); afterwards the DAGs paused, their runs finished, the shipped file back."""
    stack = airflow_stack
    folder = Path(stack.env["DATAMOVER_CONFIG_DIR"])
    shipped = (folder / "transfer_monitoring.yaml").read_text()
    extra = {
        "timing.s3_wait_time_s": WAIT,
        "timing.max_file_late_time_s": 4.0,
        "timing.notification_slack_s": SLACK,
        "metrics.push_interval_s": 1.0,
        "ingest.run_minutes": 1.0,
        "evaluation.max_run_minutes": 1.0,
        "evaluation.max_wait_minutes": 1.0,
        "evaluation.linger_s": 5.0,
    }
    for monitor in monitor_namespace(**extra):
        write_deployment_config(folder, monitor.overrides)
        try:
            yield stack, monitor
        finally:
            for dag_id in ALL:
                stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
            # A paused continuous DAG's run would go on until its task ends (minutes on a loaded
            # machine): the test is over, so its runs are ended now (their tasks are stopped).
            for dag_id in ALL:
                for run in stack.runs(dag_id, state=["running", "queued"]):
                    path = f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
                    with contextlib.suppress(AssertionError):  # it may have ended meanwhile
                        stack.api("PATCH", path, json={"state": "failed"})
            wait_for(
                lambda: not any(stack.runs(dag_id, state=["running", "queued"]) for dag_id in ALL),
                300,
                "the transfer_monitoring runs to end",
            )
            (folder / "transfer_monitoring.yaml").write_text(shipped)


def test_continuous_dags_and_the_deferred_sensor(deployed: tuple[AirflowStack, Monitor]) -> None:
    stack, live = deployed
    for dag_id in CONTINUOUS:
        stack.unpause(dag_id)
    wait_for(lambda: scalar(live, "SELECT count(*) FROM {s}.ingest_progress") == 2, 300, "the ingest to run")

    def sensor_deferred(dag_id: str, task_id: str) -> bool:
        for run in stack.runs(dag_id, state=["running"]):
            if stack.task_states(dag_id, run["dag_run_id"]).get(f"{task_id}[-1]") == "deferred":
                return True
        return False

    # Nothing is pending: the continuous evaluation waits in the triggerer.
    wait_for(lambda: sensor_deferred("transfer_monitoring_evaluate", "wait_for_exposures"), 300, "a deferral")

    feed = live.feed
    sensors = small_sensors(3)
    image_date = (datetime.now(UTC).replace(tzinfo=None) + TAI).strftime("%Y%m%d")
    base = random.randrange(1000, 90000)
    obs = [f"MC_O_{image_date}_{base + i:06d}" for i in range(3)]
    # The third one gets its own run of transfer_monitoring_exposure, triggered before it exists.
    stack.unpause("transfer_monitoring_exposure")
    single = stack.trigger(
        "transfer_monitoring_exposure", stack.form_conf("transfer_monitoring_exposure", obs_id=obs[2])
    )
    wait_for(
        lambda: sensor_deferred("transfer_monitoring_exposure", "wait_for_exposure"), 300, "its deferral"
    )

    eor_utc = {}
    for i, o in enumerate(obs):
        eor_tai = datetime.now(UTC).replace(tzinfo=None) + TAI
        eor_utc[o] = (eor_tai - TAI).replace(tzinfo=UTC)
        feed.end_of_readout(o, image_date, tai_seconds(eor_tai))
        prefix = feed.prefix(o, image_date)
        feed.put(f"{prefix}/{o}_expectedSensors.json", expected_file(o, sensors))
        feed.notify(f"{prefix}/{o}_expectedSensors.json", datetime.now(UTC))
        names = object_names(o, sensors)
        for name in names[:-1] if i == 1 else names:  # obs[1] misses one object
            feed.object(f"{prefix}/{name}")
    feed.flush()

    wait_for(
        lambda: scalar(live, "SELECT count(pushed_at) FROM {s}.exposures") == 3,
        600,
        "three evaluated exposures",
    )
    assert stack.wait_run("transfer_monitoring_exposure", single, timeout=300)["state"] == "success"
    records = live.records()
    assert [(records[o]["expected"], records[o]["found"], records[o]["missing"]) for o in obs] == [
        (6, 6, 0),
        (6, 5, 1),
        (6, 6, 0),
    ]
    # The incomplete one waited for its window and for the notifications to be in past it.
    assert records[obs[1]]["evaluated_at"] >= eor_utc[obs[1]] + timedelta(seconds=WAIT + SLACK)
    # The per-exposure sensor found nothing at first, deferred, and resumed when its exposure was done.
    log = stack.log("transfer_monitoring_exposure", single, "wait_for_exposure")
    assert "Nothing ready yet" in log, log[-2000:]

    day = observing_day(eor_utc[obs[0]].replace(tzinfo=None) + TAI).isoformat()
    sel = f'app="{live.app}",day="{day}"'
    want = {(): 3.0}
    got = eventually(lambda: by_labels(promql(f"dtm_s3_transfer_duration_seconds_count{{{sel}}}")), want, 60)
    assert got == want
    assert by_labels(promql(f"dtm_s3_late_or_missing_total{{{sel}}}")) == {(): 1.0}
    assert by_labels(promql(f"dtm_file_messages_received_total{{{sel}}}")) == {
        (): float(feed.sent_notifications)
    }
