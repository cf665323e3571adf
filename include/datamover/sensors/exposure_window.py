"""ExposureWindowSensor: wait until exposures can be evaluated, deferred to the triggerer (no worker slot).

Hooks and logic are imported when the sensor runs, not when its DAG file is parsed (task start-up)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from datamover.operators.base import fail_fast


class ExposureWindowSensor(BaseSensorOperator):
    """Succeeds when an exposure is ready for evaluation: all its expected objects arrived, or its wait
    window (S3_WAIT_TIME after the end of readout) closed and notifications are ingested past it; also
    when evaluated exposures have late arrivals to count. With `obs_id`, waits for that exposure only.

    Deferrable by default: after one immediate check it hands the waiting to ExposureWindowTrigger.
    `config_overrides`: dotted-path overrides of include/config/transfer_monitoring.yaml (trigger form)."""

    template_fields: Sequence[str] = ("config_overrides", "obs_id")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        config_overrides: Mapping[str, Any] | None = None,
        obs_id: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.config_overrides = config_overrides
        self.obs_id = obs_id
        self.deferrable = deferrable

    def _cfg(self) -> Any:
        from datamover.monitoring.config import load

        with fail_fast():
            return load(dict(self.config_overrides or {}))

    def poke(self, context: Any) -> bool:
        from datamover.hooks.transfer_monitoring import TransferMonitoringHook
        from datamover.monitoring.timescale import utc_datetime

        cfg = self._cfg()
        hook = TransferMonitoringHook(cfg)
        with fail_fast(), hook.store() as store:
            store.ensure_schema()
            state = store.readiness(
                utc_datetime(time.time()),
                timedelta(seconds=cfg.timing.s3_wait_time_s),
                timedelta(seconds=cfg.timing.notification_slack_s),
                self.obs_id or None,
            )
        self.log.info(
            "%s; %d exposure(s) pending; notifications ingested up to %s",
            "Work is ready" if state.ready else "Nothing ready yet",
            state.pending,
            state.caught_up_at,
        )
        return bool(state.ready)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from datamover.triggers.exposure_window import ExposureWindowTrigger

        cfg = self._cfg()
        self.defer(
            trigger=ExposureWindowTrigger(
                postgres_conn_id=cfg.postgres.connection,
                schema=cfg.postgres.schema_name,
                wait_s=cfg.timing.s3_wait_time_s,
                slack_s=cfg.timing.notification_slack_s,
                poke_interval_s=cfg.evaluation.poke_interval_s,
                obs_id=self.obs_id or None,
            ),
            method_name="execute_complete",
            timeout=timedelta(minutes=cfg.evaluation.max_wait_minutes),
        )

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> None:
        if not event or event.get("status") != "ready":
            raise AirflowException(f"Transfer monitoring trigger failed: {(event or {}).get('message')}")
        self.log.info("Work is ready (%s exposure(s) pending)", event.get("pending"))
