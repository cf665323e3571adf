"""log_collector: the LogDog Collector as a DAG (logic in datamover.logdog; the archivist is log_archival)."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, CronTriggerTimetable, task

from datamover import params
from datamover.assets import LOGDOG_STREAMS
from datamover.dag_defaults import default_args
from datamover.operators.logdog import LogDogCollectOperator, has_new_streams

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PARAMS = "{{ params }}"  # rendered as a dict (native templates); the operators map it to config keys
DAY = 86_400

with DAG(
    dag_id="log_collector",
    description="Drain LogDog Butler bundles from Kafka into PostgreSQL intermediate storage.",
    schedule=CronTriggerTimetable("* * * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["logdog", "datamover"],
    params={
        "topic": params.optional_text("Kafka topic of the Butler messages; empty = collector.topic."),
        "max_runtime_s": params.optional_number(
            "Stop after this many seconds; empty = as configured.", 1, DAY
        ),
        "schema": params.optional_text(
            "PostgreSQL schema of the intermediate storage; empty = storage.schema."
        ),
    },
    doc_md="""
### log_collector: the LogDog Collector

Drains the Kafka topic `collector.topic` (include/config/log_archival.yaml), which carries what LogDog's
Butler publishes (a RecordIO `ButlerMetadata` frame, then a `ButlerLogBundle` frame, zlib-compressed or not),
into PostgreSQL (connection `logdog_postgres`, schema `storage.schema`): streams are registered with their
descriptor and prefix secret, entries stored by (stream, stream index), terminal indices recorded.

* **collect**: batches of messages, one transaction each; Kafka offsets are committed only after the rows
  are written, so a crash redelivers and redelivery is harmless (duplicates skipped). A malformed message or
  bundle entry is counted, logged with its partition and offset, and skipped. Stops when the topic is drained,
  after `collector.idle_timeout_s` without a message, or after `collector.max_runtime_s`.
* **new_streams** / **announce**: when streams were registered or terminated, the Asset `logdog_streams`
  gets an event, which schedules `log_archival`.
""",
) as collector_dag:
    collect = LogDogCollectOperator(task_id="collect", run_params=PARAMS)
    new_streams = ShortCircuitOperator(
        task_id="new_streams", python_callable=has_new_streams, op_args=[collect.output]
    )

    @task(outlets=[LOGDOG_STREAMS])
    def announce(stats: dict, outlet_events=None) -> None:  # type: ignore[no-untyped-def]
        outlet_events[LOGDOG_STREAMS].extra = {
            k: stats.get(k) for k in ("streams_registered", "streams_terminated", "entries_written")
        }

    new_streams >> announce(collect.output)
