"""Thin Airflow adapters for log_archival (logic in datamover.logdog): collect, plan, archive.

Hooks and the logic behind them are imported when a task runs, so the DAG file parses fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from datamover.operators.base import fail_fast, settle_heap
from datamover.operators.lineage import LineageMixin

if TYPE_CHECKING:
    from datamover.logdog.archivist import ArchivistSettings
    from datamover.logdog.config import LogArchivalConfig

# Trigger-form params of the DAGs -> dotted keys of include/config/log_archival.yaml.
PARAM_KEYS = {
    "settle_delay_s": "archival.settle_delay_s",
    "delay_max_s": "archival.delay_max_s",
    "completeness_threshold_s": "archival.completeness_threshold_s",
    "horizon_s": "archival.horizon_s",
    "max_streams_per_run": "archival.max_streams_per_run",
    "poll_interval_s": "archival.poll_interval_s",
    "index_stream_range": "archival.index.stream_range",
    "index_prefix_range": "archival.index.prefix_range",
    "index_byte_range": "archival.index.byte_range",
    "data_file": "archival.data_file",
    "schema": "storage.schema",
    "topic": "collector.topic",
    "max_runtime_s": "collector.max_runtime_s",
}


def overrides_from_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's params as config overrides (None = keep the file's value)."""
    params = params or {}
    return {
        key: params.get(name)
        for name, key in PARAM_KEYS.items()
        if params.get(name) is not None and params.get(name) != "config"
    }


def archivist_settings(cfg: LogArchivalConfig) -> ArchivistSettings:
    from datamover.logdog.archivist import ArchivistSettings
    from datamover.units import MIB

    a = cfg.archival
    return ArchivistSettings(
        staging_base=a.staging_path,
        base=a.base_path,
        rules=a.index.rules,
        delays=a.delays,
        lease=timedelta(seconds=a.lease_s),
        data_file=a.data_file,
        part_size=a.part_size_mib * MIB,
        upload_workers=a.upload_workers,
    )


class _LogDogOperator(LineageMixin, BaseOperator):
    """`run_params`: the run's trigger-form params (PARAM_KEYS), usually "{{ params }}"."""

    template_fields: Sequence[str] = ("run_params",)

    def __init__(self, *, run_params: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_params = run_params

    def config(self) -> LogArchivalConfig:
        from datamover.logdog.config import load

        with fail_fast():
            return load(overrides_from_params(self.run_params))

    def storage_table(self, cfg: LogArchivalConfig, name: str) -> Any:
        """The intermediate storage table `name` (log_entries, log_streams) as a lazy dataset name."""
        from datamover.hooks.postgres import PostgresHook
        from datamover.operators.lineage import postgres_dataset

        return lambda: postgres_dataset(PostgresHook(cfg.connections.postgres_conn_id), name, cfg.schema)


class LogDogCollectOperator(_LogDogOperator):
    """Drains the Butler topic into intermediate storage (see datamover.logdog.collector); returns the
    counts. Offsets are committed only after each batch's rows are written.
    Lineage: the Butler topic -> the intermediate storage tables."""

    def execute(self, context: Any) -> dict[str, Any]:
        from datamover.hooks.kafka import KafkaHook
        from datamover.hooks.postgres import PostgresHook
        from datamover.logdog import storage
        from datamover.logdog.collector import DrainLimits, drain
        from datamover.operators.lineage import kafka_dataset

        settle_heap()
        cfg = self.config()
        c = cfg.collector
        with fail_fast():
            kafka = KafkaHook(cfg.connections.kafka_config_id)
            self.lineage(
                inputs=[lambda: kafka_dataset(kafka, c.topic)],
                outputs=[self.storage_table(cfg, "log_entries"), self.storage_table(cfg, "log_streams")],
            )
            consumer = kafka.consumer(c.consumer_group, **{"enable.partition.eof": True})
            conn = PostgresHook(cfg.connections.postgres_conn_id).connect()
        try:
            storage.ensure_schema(conn, cfg.schema)
            limits = DrainLimits(
                batch_messages=c.batch_messages, idle_timeout=c.idle_timeout_s, max_runtime=c.max_runtime_s
            )
            stats = drain(consumer, conn, cfg.schema, c.topic, limits, logger=self.log)
        finally:
            consumer.close()
            conn.close()
        self.log.info(
            "Collected %d message(s) (%d B): %d entries written, %d duplicate(s), %d stream(s) registered, "
            "%d terminated, %d malformed message(s), %d rejected bundle entr(y/ies), in %.1f s.",
            stats.messages,
            stats.bytes,
            stats.entries_written,
            stats.duplicates,
            stats.streams_registered,
            stats.streams_terminated,
            stats.malformed_messages,
            stats.rejected_entries,
            stats.seconds,
        )
        return stats.as_dict()


def has_new_streams(stats: Mapping[str, Any]) -> bool:
    """ShortCircuit: announce the collector's run only when it registered or terminated streams."""
    return bool(stats.get("streams_registered") or stats.get("streams_terminated"))


class LogStreamPlanOperator(_LogDogOperator):
    """Picks the streams this run watches (due within `archival.horizon_s`, not watched by another live
    run, or left `archiving` by a crashed run), expunges leftovers of archived streams, checks the
    archive buckets. Returns the stream ids to map the settle sensors over.
    Lineage: reads the stream registry (nothing moves)."""

    def execute(self, context: Any) -> list[int]:
        from datamover.errors import ConfigError
        from datamover.hooks.postgres import PostgresHook
        from datamover.hooks.s3 import ObjectStoreHook
        from datamover.logdog import storage
        from datamover.s3 import create_bucket

        cfg = self.config()
        a = cfg.archival
        self.lineage(inputs=[self.storage_table(cfg, "log_streams")])
        with fail_fast():
            client = ObjectStoreHook(cfg.connections.archive_conn_id).client()
            for path in (a.staging_path, a.base_path):
                if head_or_none_bucket(client, path.bucket):
                    continue
                if not a.create_buckets:
                    raise ConfigError(
                        f"Bucket {path.bucket!r} (log_archival.yaml archival.staging_base/base) is missing "
                        f"on connection {cfg.connections.archive_conn_id!r}. Fix: create it, or set "
                        "archival.create_buckets: true."
                    )
                create_bucket(client, path.bucket)
                self.log.info("Created bucket %s", path.bucket)
            conn = PostgresHook(cfg.connections.postgres_conn_id).connect()
        try:
            storage.ensure_schema(conn, cfg.schema)
            for stream_id in storage.leftover_archived(conn, cfg.schema):
                removed = storage.expunge(conn, cfg.schema, stream_id)
                self.log.info("Expunged %d leftover row(s) of archived stream %d", removed, stream_id)
            ti = context["ti"]
            owner = f"{ti.dag_id}/{ti.run_id}"
            ids = storage.candidates(
                conn,
                cfg.schema,
                owner=owner,
                horizon=timedelta(seconds=a.horizon_s),
                watch_for=timedelta(seconds=a.sensor_timeout_s + 600),
                delay_max=timedelta(seconds=a.delay_max_s),
                settle_delay=timedelta(seconds=a.settle_delay_s),
                limit=a.max_streams_per_run,
            )
        finally:
            conn.close()
        self.log.info("Watching %d stream(s) due within %d s: %s", len(ids), a.horizon_s, ids[:50])
        return ids


def head_or_none_bucket(client: Any, bucket: str) -> bool:
    from datamover.s3 import is_not_found

    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise
    return True


class LogStreamArchiveOperator(_LogDogOperator):
    """Archives one stream (see datamover.logdog.archivist): staged multipart upload, server-side move,
    coordinator update, expunge. Its lease owner is the task instance, so a retry resumes at once.
    Lineage: the stream's rows in intermediate storage -> its archive objects (entries, index, data)."""

    template_fields: Sequence[str] = ("stream_id", "run_params")

    def __init__(self, *, stream_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_id = stream_id

    def execute(self, context: Any) -> dict[str, Any]:
        from datamover.hooks.postgres import PostgresHook
        from datamover.hooks.s3 import ObjectStoreHook
        from datamover.lineage import s3_uri
        from datamover.logdog.archivist import Archivist

        settle_heap()
        cfg = self.config()
        stream_id = int(self.stream_id)
        ti = context["ti"]
        owner = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
        with fail_fast():
            client = ObjectStoreHook(cfg.connections.archive_conn_id).client()
            hook = PostgresHook(cfg.connections.postgres_conn_id)
            conn, data_conn = hook.connect(), hook.connect()
        try:
            outcome = Archivist(
                conn, data_conn, cfg.schema, client, archivist_settings(cfg), owner, self.log
            ).archive(stream_id)
        finally:
            conn.close()
            data_conn.close()
        self.lineage(
            inputs=[self.storage_table(cfg, "log_entries")],
            outputs=[
                s3_uri(url)
                for url in (outcome.entries_url, outcome.index_url, outcome.data_url)
                if url and url.startswith("s3://")
            ],
        )
        if outcome.action in ("skipped", "not_due", "gone"):
            raise AirflowSkipException(f"Stream {stream_id}: {outcome.action}: {outcome.reason}")
        return outcome.as_dict()


__all__ = [
    "LogDogCollectOperator",
    "LogStreamArchiveOperator",
    "LogStreamPlanOperator",
    "has_new_streams",
    "overrides_from_params",
]
