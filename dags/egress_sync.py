"""egress_sync: mirror the egress dumps from AWS S3 to DataHub's Ceph (the seed's `mc mirror` job)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable

from datamover import params
from datamover.assets import EGRESS_DUMPS
from datamover.dag_defaults import default_args
from datamover.operators.s3_mirror import S3MirrorOperator, S3MirrorPlanOperator, S3MirrorSummaryOperator

with DAG(
    dag_id="egress_sync",
    description="Mirror the egress dump bucket/path from S3 to Ceph (the seed's mc mirror job)",
    # Daily (covering the previous day, like egress_dump), and as soon as egress_dump publishes a day.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 3 * * *", timezone="UTC", interval=timedelta(days=1)),
        assets=[EGRESS_DUMPS],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # a run aborts unfinished multipart uploads left in its scope by a killed run
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["egress", "sync", "datamover"],
    params={
        "scope": params.choice(
            "day", ["day", "all"], "day: the date folders of the run (one per dump event); all: whole tree"
        ),
        "remove_extraneous": params.switch("Delete destination objects that are not at the source."),
        "max_delete": params.number(1000, "Safety cap on deletions per shard.", 0, 1_000_000),
        "shards": params.number(2, "Parallel copy tasks (key ranges) per date folder.", 1, 64),
    },
    doc_md="""
### egress_sync: S3 -> Ceph mirror

Mirrors connection `egress_input` (AWS S3, extra `path` = bucket or bucket/folder) to `egress_output`
(DataHub Ceph RGW), like `mc mirror --overwrite input/PATH output/PATH` did, streamed between the two
clusters (no server-side copy), in parallel across objects and across parts of large objects.

* **plan**: checks both connections (wrong keys fail at once), creates the destination bucket if
  missing, cuts the key space into `shards` key ranges.
* **copy** (mapped, pool `s3_transfers`): one shard each; copies missing/changed objects, skips identical
  ones (size + ETag; multipart sources are copied with their own part layout so ETags match), verifies
  each copy, aborts unfinished uploads; logs `` `input/<path>` -> `output/<path>` `` per object.
* **summary**: logs `Total: X MiB, Transferred: Y MiB, Speed: Z MiB/s` and the counts, pushes them to
  the Pushgateway (job `egress_sync`), returns them.

Params: `scope` (`day` = date folders `YYYY-MM-DD/`: the date of **every** dump asset event the run
consumed - several when dump runs queued up, e.g. after a backfill - each summarized on its own line;
without events the data interval start as in egress_dump, so `dags test egress_sync 2026-01-06` syncs
`2026-01-05/`; plus every day of the last 30 dump events whose `_manifest.json` is not yet at the
destination: Airflow 3.3 can leave an event that arrives while a run is queued or running unconsumed
until the next one, apache/airflow#56050, and the daily run also catches a day a failed run left behind;
`all`),
`remove_extraneous` (off by default; never after a failed source listing; capped by `max_delete`), `shards`.
""",
):
    plan = S3MirrorPlanOperator(
        task_id="plan",
        inlets=[EGRESS_DUMPS],  # read back recent dump events: see "Params: scope" in doc_md
        scope="{{ params.scope }}",
        shards="{{ params.shards }}",
        remove_extraneous="{{ params.remove_extraneous }}",
        max_delete="{{ params.max_delete }}",
    )
    copy = S3MirrorOperator.partial(task_id="copy", pool="s3_transfers").expand(shard=plan.output)
    # Reports only: its verdict cannot change on a retry (the copies retry themselves).
    summary = S3MirrorSummaryOperator(task_id="summary", trigger_rule="all_done", retries=0)
    copy >> summary
