"""The deferrable settle-delay sensor of one log stream (trigger: datamover.triggers.logdog)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from datamover.logdog.coordinator import Action
from datamover.operators.base import fail_fast
from datamover.operators.logdog import overrides_from_params


class LogStreamSettleSensor(BaseSensorOperator):
    """Waits, deferred to the triggerer, until stream `stream_id` may be archived: terminated and settled
    (`archival.settle_delay_s`), or older than `archival.delay_max_s`; an incomplete stream waits up to
    `archival.completeness_threshold_s` more for its missing entries. Returns
    `{"stream_id", "action": "archive", "reason", "complete"}`; skips when the stream was archived
    meanwhile or is gone, and (soft_fail) when it is not due within `archival.sensor_timeout_s`, leaving
    it to a later run."""

    template_fields: Sequence[str] = ("stream_id", "run_params")
    ui_color = "#e6f0ff"

    def __init__(
        self, *, stream_id: int | str, run_params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.stream_id = stream_id
        self.run_params = run_params  # the run's trigger-form params, usually "{{ params }}"

    def execute(self, context: Any) -> Any:
        from datamover.logdog import storage
        from datamover.logdog.config import load
        from datamover.logdog.coordinator import decide
        from datamover.triggers.logdog import LogStreamSettledTrigger

        with fail_fast():
            cfg = load(overrides_from_params(self.run_params))
        stream_id = int(self.stream_id)
        a = cfg.archival
        with storage_connection(cfg.connections.postgres_conn_id) as conn:
            decision = decide(storage.load_state(conn, cfg.schema, stream_id), a.delays)
        if decision.action != Action.WAIT:  # no need to defer
            return self.execute_complete(context, decision.as_event(stream_id))
        self.log.info("Stream %d: %s; deferring to the triggerer.", stream_id, decision.reason)
        self.defer(
            trigger=LogStreamSettledTrigger(
                postgres_conn_id=cfg.connections.postgres_conn_id,
                schema=cfg.schema,
                stream_id=stream_id,
                settle_delay_s=a.settle_delay_s,
                delay_max_s=a.delay_max_s,
                completeness_threshold_s=a.completeness_threshold_s,
                poll_interval_s=a.poll_interval_s,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=a.sensor_timeout_s),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or "action" not in event:
            raise AirflowException(f"the settle trigger sent no usable event: {event!r}")
        action = event["action"]
        if action in (Action.DONE.value, Action.GONE.value):
            raise AirflowSkipException(f"Stream {event.get('stream_id')}: {event.get('reason')}")
        if action != Action.ARCHIVE.value:
            raise AirflowException(f"unexpected settle event {event!r}")
        self.log.info("Stream %s released for archival: %s", event["stream_id"], event["reason"])
        return event


def storage_connection(postgres_conn_id: str) -> Any:
    from datamover.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id).connect()
