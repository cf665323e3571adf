"""transfer_monitoring: Rubin-style transfer-time and late-file monitoring (seed: the DTM service)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from datamover.dag_defaults import default_args
from datamover.operators.transfer_monitoring import ExposureEvaluationOperator, TransferEventsIngestOperator
from datamover.sensors.exposure_window import ExposureWindowSensor

CONFIG_PARAM = Param(
    {},
    type=["null", "object"],
    description="Overrides of include/config/transfer_monitoring.yaml by dotted path, "
    'e.g. {"timing.s3_wait_time_s": 60}',
)
START = pendulum.datetime(2026, 1, 1, tz="UTC")
TAGS = ["monitoring", "transfer", "datamover"]

with DAG(
    dag_id="transfer_monitoring_ingest",
    description="File notifications and End Readouts from Kafka into PostgreSQL, exactly once",
    schedule="@continuous",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=5),
    render_template_as_native_obj=True,
    tags=TAGS,
    params={
        "config": CONFIG_PARAM,
        "run_minutes": Param(
            None, type=["null", "number"], description="Consume this long (default: config)"
        ),
        "idle_exit_s": Param(
            None,
            type=["null", "number"],
            description="Stop once caught up and idle this long (catch-up runs)",
        ),
    },
    doc_md="""
### transfer_monitoring_ingest

Runs continuously (`@continuous`, one run at a time): each run's **ingest** task consumes the file
notification topic (Ceph bucket notifications, S3 event JSON) and the End Readout topic for
`ingest.run_minutes`, then the next run takes over. Each batch is one PostgreSQL transaction with the Kafka
offsets it consumed, so a killed task or a restart replays nothing twice and skips nothing (a backlog is
read from the stored offsets, or from the start of the topic).

Per batch: notifications counted per observing day (duplicates counted) and reduced to each object's
first arrival (what times the transfer), new expected-sensors files read from the bucket, one exposure
row per End Readout (the first wins). `dtm_file_messages_received_total{day}` is pushed to the Pushgateway
every `metrics.push_interval_s`, as absolute totals from PostgreSQL.

Config: `include/config/transfer_monitoring.yaml` (param `config` overrides it by dotted path).
Evaluation: DAG `transfer_monitoring_evaluate`.
""",
):
    TransferEventsIngestOperator(
        task_id="ingest",
        config_overrides="{{ params.config }}",
        run_minutes="{{ params.run_minutes }}",
        idle_exit_s="{{ params.idle_exit_s }}",
    )

with DAG(
    dag_id="transfer_monitoring_evaluate",
    description="One evaluation per exposure when its wait window closes; the original's metrics pushed",
    schedule="@continuous",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=5),
    render_template_as_native_obj=True,
    tags=TAGS,
    params={
        "config": CONFIG_PARAM,
        "obs_id": Param(None, type=["null", "string"], description="Only this exposure (re-checks, tests)"),
    },
    doc_md="""
### transfer_monitoring_evaluate

Runs continuously, one run at a time:

* **wait_for_exposures** (deferrable sensor, in the triggerer: no worker slot while waiting) until an
  exposure is ready: all its expected objects arrived, or its wait window (`timing.s3_wait_time_s`, the
  original's S3_WAIT_TIME, after the end of readout) closed and notifications are ingested past it; or
  until evaluated exposures have late arrivals to count.
* **evaluate**: every ready exposure once (its row in `<schema>.exposures` gets expected, found, missing,
  late, late_after_window, transfer_time_s, missing_keys); a warning line per incomplete exposure with its
  found count; then `dtm_s3_transfer_duration_seconds`, `dtm_s3_late_files_total` and
  `dtm_s3_late_or_missing_total` (label `day`, the observing day of the end of readout) are pushed for
  the days that changed, as absolute totals recomputed from PostgreSQL.

Objects that arrive after the window are counted as late (and were missing when the window closed).
Results depend on timestamps only: an evaluation after a crash, a rerun or a replay gives the same totals.
""",
):
    wait = ExposureWindowSensor(
        task_id="wait_for_exposures",
        config_overrides="{{ params.config }}",
        obs_id="{{ params.obs_id }}",
        soft_fail=True,  # nothing to do for max_wait_minutes: skip; the next continuous run waits again
    )
    evaluate = ExposureEvaluationOperator(
        task_id="evaluate",
        config_overrides="{{ params.config }}",
        obs_id="{{ params.obs_id }}",
    )
    wait >> evaluate

with DAG(
    dag_id="transfer_monitoring_exposure",
    description="Evaluate one exposure (obs_id) once its objects are in or its wait window has closed",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=32,
    default_args=default_args(retries=3),
    render_template_as_native_obj=True,
    tags=TAGS,
    params={
        "config": CONFIG_PARAM,
        "obs_id": Param(
            None, type=["null", "string"], description="The exposure (imageName, e.g. MC_O_20250101_000001)"
        ),
    },
    doc_md="""
### transfer_monitoring_exposure

One run per exposure: **wait_for_exposure** (the same deferrable sensor, for this `obs_id` only)
then **evaluate** (this exposure only; late arrivals of others are counted too, and metrics pushed).
For re-checks by hand, and the per-End-Readout alternative to `transfer_monitoring_evaluate` (a run
per exposure, as an AssetWatcher on the End Readout topic would start): `make bench-monitoring`
measures both; at 10x Rubin's rate the continuous micro-batch DAG is the one that keeps up (README).
An exposure evaluated already is not evaluated again.
""",
):
    ExposureWindowSensor(
        task_id="wait_for_exposure",
        config_overrides="{{ params.config }}",
        obs_id="{{ params.obs_id }}",
        soft_fail=True,
    ) >> ExposureEvaluationOperator(
        task_id="evaluate",
        config_overrides="{{ params.config }}",
        obs_id="{{ params.obs_id }}",
    )
