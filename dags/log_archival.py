"""log_archival: the LogDog Archivist as a DAG (logic in datamover.logdog; the collector is log_collector)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, task_group

from datamover import params
from datamover.assets import LOGDOG_STREAMS
from datamover.dag_defaults import default_args
from datamover.operators.logdog import LogStreamArchiveOperator, LogStreamPlanOperator
from datamover.sensors.logdog import LogStreamSettleSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PARAMS = "{{ params }}"  # rendered as a dict (native templates); the operators map it to config keys
DAY = 86_400

with DAG(
    dag_id="log_archival",
    description="Archive settled LogDog streams from PostgreSQL to object storage, LUCI-compatible.",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC", interval=timedelta(minutes=5)),
        assets=[LOGDOG_STREAMS],
    ),
    start_date=START,
    catchup=False,
    max_active_runs=3,  # runs overlap while their sensors wait; each stream is watched by one run at a time
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["logdog", "datamover"],
    params={
        "settle_delay_s": params.optional_number("Seconds to wait after the terminal entry.", 0, DAY),
        "delay_max_s": params.optional_number("Archive streams this old even unterminated.", 1, 30 * DAY),
        "completeness_threshold_s": params.optional_number("Extra wait for missing entries.", 0, 30 * DAY),
        "horizon_s": params.optional_number("Watch the streams due within this many seconds.", 0, DAY),
        "max_streams_per_run": params.optional_number("Streams this run watches at most.", 1, 10_000),
        "poll_interval_s": params.optional_number("The settle trigger's polling period.", 1, 3600),
        "index_stream_range": params.optional_number("Index rule: stream index range.", 0, 2**31),
        "index_prefix_range": params.optional_number("Index rule: prefix index range.", 0, 2**31),
        "index_byte_range": params.optional_number("Index rule: byte range.", 0, 2**31),
        "data_file": params.choice("config", ["config", "auto", "always", "never"], "The legacy data file."),
        "schema": params.optional_text(
            "PostgreSQL schema of the intermediate storage; empty = storage.schema."
        ),
    },
    doc_md="""
### log_archival: the LogDog Archivist

Archives log streams from PostgreSQL intermediate storage into archival storage (connection
`logdog_archive`, S3 or Ceph), as files LogDog's own tools read: `logstream.entries` (RecordIO: the
`LogStreamDescriptor`, then every `LogEntry`), `logstream.index` (a `LogIndex`, per the index rules) and,
when the stream sets `binary_file_ext` (config `archival.data_file`), the legacy data file `data.<ext>`.

* **plan**: picks the streams due within `archival.horizon_s` (terminated + `settle_delay_s`, or registered
  + `delay_max_s`) that no other live run watches, plus streams a crashed run left `archiving`; expunges
  leftover rows of archived streams; creates or checks the buckets.
* **stream.settle** (mapped, deferrable): waits on the triggerer, without a worker slot, until the stream is
  released: terminated and settled, or too old. Incomplete (an entry below the terminal index missing):
  waits up to `completeness_threshold_s` more, then best-effort.
* **stream.archive** (mapped, pool `logdog_archival`): under a lease in PostgreSQL, streams the entries out
  of PostgreSQL (server-side cursor) into multipart uploads under `staging_base`, moves them to
  `<base>/<project>/<prefix>/+/<name>/` (server-side copy + delete), records the result in the coordinator
  (state `archived`, URLs, sizes, entry count, terminal index, complete flag), then expunges the rows. A
  crash at any step is finished or redone by the next try or run.

The trigger form overrides delays, index rules, the data file and the schema for one run.
""",
) as archival_dag:
    plan = LogStreamPlanOperator(task_id="plan", run_params=PARAMS)

    @task_group(group_id="stream")
    def archive_stream(stream_id: int) -> None:
        settle = LogStreamSettleSensor(task_id="settle", stream_id=stream_id, run_params=PARAMS)
        archive = LogStreamArchiveOperator(
            task_id="archive",
            stream_id=stream_id,
            run_params=PARAMS,
            pool="logdog_archival",
            map_index_template="stream {{ task.stream_id }}",
        )
        settle >> archive

    archive_stream.expand(stream_id=plan.output)
