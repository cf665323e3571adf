"""Operators of transfer monitoring: thin adapters over datamover.monitoring (the logic lives there).

Both read include/config/transfer_monitoring.yaml when they run (never at DAG import), with the run's
`config_overrides` (dotted paths, from the trigger form). Each takes a PostgreSQL advisory lock for its
role, so a second ingest (or evaluator) on the same schema waits instead of doubling the work.

The hooks and the logic are imported when a task runs, not when the DAG file is parsed: every task
process parses its DAG file first, and the evaluate DAG starts two or three tasks a minute.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from datamover.errors import DataMoverError
from datamover.operators.base import fail_fast, settle_heap
from datamover.operators.lineage import LineageMixin

if TYPE_CHECKING:
    from datamover.monitoring.config import TransferMonitoringConfig
    from datamover.monitoring.store import Store


class BusyError(DataMoverError):
    """Another task holds the role's lock on this schema (worth a retry)."""


def _lock(store: Store, role: str, wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while not store.try_lock(role):
        if time.monotonic() >= deadline:
            raise BusyError(
                f"Another transfer monitoring {role} task is working on schema {store.schema!r} "
                f"(PostgreSQL advisory lock held for {wait_s:g} s). It will be retried."
            )
        time.sleep(1)


class _MonitoringOperator(LineageMixin, BaseOperator):
    template_fields: Sequence[str] = ("config_overrides",)

    def __init__(self, *, config_overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_overrides = config_overrides

    def config(self) -> TransferMonitoringConfig:
        from datamover.monitoring.config import load

        with fail_fast():
            return load(dict(self.config_overrides or {}))

    def record_lineage(self, cfg: TransferMonitoringConfig, role: str) -> None:
        """ingest: both topics + the expected-sensors objects -> the store's tables; evaluate: the store and
        the exposures' objects -> the exposures' evaluation records."""
        from datamover.hooks.kafka import KafkaHook
        from datamover.hooks.postgres import PostgresHook
        from datamover.lineage import s3_object
        from datamover.operators.lineage import kafka_dataset, postgres_dataset

        pg = PostgresHook(cfg.postgres.connection)
        schema = cfg.postgres.schema_name

        def table(name: str) -> Any:
            return lambda: postgres_dataset(pg, name, schema)

        bucket = s3_object(cfg.object_store.bucket)
        if role == "ingest":
            topics = [
                (lambda src=src: kafka_dataset(KafkaHook(src.kafka_connection), src.topic))
                for src in (cfg.file_notifications, cfg.end_readouts)
            ]
            self.lineage(
                inputs=[*topics, bucket],
                outputs=[
                    table("file_messages"),
                    table("objects"),
                    table("exposures"),
                    table("expected_sensors"),
                ],
            )
        else:
            self.lineage(
                inputs=[table("exposures"), table("objects"), table("expected_sensors"), bucket],
                outputs=[table("exposures")],
            )


class TransferEventsIngestOperator(_MonitoringOperator):
    """Consume file notifications and End Readouts into PostgreSQL for `ingest.run_minutes` (or until
    caught up and idle for `idle_exit_s`), pushing `dtm_file_messages_received_total` as it goes.
    Lineage: the two topics and the bucket -> the store's tables."""

    template_fields: Sequence[str] = ("config_overrides", "run_minutes", "idle_exit_s")
    ui_color = "#fdf2e3"

    def __init__(
        self, *, run_minutes: float | None = None, idle_exit_s: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.run_minutes = run_minutes
        self.idle_exit_s = idle_exit_s

    def execute(self, context: Any) -> dict[str, Any]:
        from datamover.hooks.transfer_monitoring import TransferMonitoringHook
        from datamover.monitoring.ingest import Ingestor, IngestStats
        from datamover.monitoring.publish import publish_file_messages, publish_new_days

        settle_heap()
        cfg = self.config()
        self.record_lineage(cfg, "ingest")
        hook = TransferMonitoringHook(cfg)
        minutes = float(self.run_minutes) if self.run_minutes else cfg.ingest.run_minutes
        idle = float(self.idle_exit_s) if self.idle_exit_s not in (None, "") else None
        with fail_fast(), hook.store() as store, hook.consumers() as consumers:
            store.ensure_schema()
            _lock(store, "ingest")
            ingestor = Ingestor(cfg, store, consumers, hook.get_object, logger=self.log)
            last_push = 0.0

            def push() -> None:
                publish_file_messages(store, hook.push, cfg.metrics.app, self.log)
                publish_new_days(
                    store, hook.push, cfg.metrics.app, cfg.metrics.transfer_time_buckets, self.log
                )

            def after_batch(stats: IngestStats) -> None:
                nonlocal last_push
                if time.monotonic() - last_push >= cfg.metrics.push_interval_s:
                    last_push = time.monotonic()
                    push()

            stats = ingestor.run(time.time() + minutes * 60, idle_exit_s=idle, after_batch=after_batch)
            push()
        self.log.info(
            "Ingested %d message(s) in %d batch(es): %d file notification(s), %d End Readout(s) (%d new "
            "exposure(s)), %d expected-sensors file(s), %d ignored, %d malformed",
            stats.messages,
            stats.batches,
            stats.notifications,
            stats.end_readouts,
            stats.new_exposures,
            stats.expected_files,
            stats.ignored,
            stats.malformed,
        )
        return stats.as_dict()


class ExposureEvaluationOperator(_MonitoringOperator):
    """Evaluate every exposure that is ready (one record each, once), count late arrivals of earlier
    ones, and push the exposure metrics of the days that changed. With `obs_id`, only that exposure.

    While more exposures keep becoming ready within `evaluation.linger_s` of the last pass (a busy
    night), the task stays and evaluates them as they come, pushing after each pass, for at most
    `evaluation.max_run_minutes`; then the run ends and the next one's sensor waits in the triggerer.
    That spares two task start-ups per exposure at high rates; `linger_s: 0` makes every run one pass.
    Lineage: the store's tables and the bucket -> the exposures table."""

    template_fields: Sequence[str] = ("config_overrides", "obs_id")
    ui_color = "#e3f5e1"

    def __init__(self, *, obs_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.obs_id = obs_id

    def execute(self, context: Any) -> dict[str, Any]:
        from datamover.hooks.transfer_monitoring import TransferMonitoringHook
        from datamover.monitoring.evaluator import Evaluator
        from datamover.monitoring.publish import publish_exposures
        from datamover.monitoring.timescale import utc_datetime

        cfg = self.config()
        self.record_lineage(cfg, "evaluate")
        hook = TransferMonitoringHook(cfg)
        obs_id = self.obs_id or None
        totals = {"evaluated": 0, "incomplete": 0, "swept": 0, "listed_only": 0, "passes": 0}
        days: set[str] = set()
        pushed_days: set[str] = set()
        failed_days: set[str] = set()
        wait = timedelta(seconds=cfg.timing.s3_wait_time_s)
        slack = timedelta(seconds=cfg.timing.notification_slack_s)
        deadline = time.monotonic() + cfg.evaluation.max_run_minutes * 60
        with fail_fast(), hook.store() as store:
            store.ensure_schema()
            _lock(store, "evaluate")
            evaluator = Evaluator(cfg, store, hook.get_object, hook.list_prefix, logger=self.log)
            while True:
                result = evaluator.run_pass(obs_id)
                totals["passes"] += 1
                totals["evaluated"] += result.evaluated
                totals["incomplete"] += result.incomplete
                totals["swept"] += result.swept
                totals["listed_only"] += result.listed_only
                days.update(d.isoformat() for d in result.days)
                pushed = publish_exposures(
                    store, hook.push, cfg.metrics.app, cfg.metrics.transfer_time_buckets, self.log
                )
                pushed_days.update(pushed.days)
                failed_days.update(pushed.failed)
                if time.monotonic() >= deadline or obs_id is not None:
                    break
                if result.evaluated >= cfg.evaluation.max_exposures:
                    continue  # a backlog larger than one pass
                if not self._linger(store, cfg.evaluation, wait, slack, deadline, utc_datetime):
                    break
        self.log.info(
            "Evaluated %d exposure(s) (%d incomplete) in %d pass(es), late count raised for %d earlier "
            "one(s), %d object(s) timed from the listing; metrics pushed for day(s) %s",
            totals["evaluated"],
            totals["incomplete"],
            totals["passes"],
            totals["swept"],
            totals["listed_only"],
            ", ".join(sorted(pushed_days)) or "none",
        )
        return {
            **totals,
            "days": sorted(days),
            "pushed_days": sorted(pushed_days),
            "push_failed_days": sorted(failed_days - pushed_days),
        }

    def _linger(
        self, store: Store, evaluation: Any, wait: timedelta, slack: timedelta, deadline: float, now: Any
    ) -> bool:
        """Poll for more work for up to `linger_s`; True when there is some."""
        until = min(time.monotonic() + evaluation.linger_s, deadline)
        while time.monotonic() < until:
            time.sleep(evaluation.poke_interval_s)
            if store.readiness(now(time.time()), wait, slack).ready:
                return True
        return False
