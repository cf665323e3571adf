"""The health watch DAG's tasks: collect the alerts that triggered the run, then one failed task per
alert, named after the member (its map index), so the alert shows where Airflow users look."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from datamover.health_assets import HEALTH_ALERTS_NAME
from datamover.operators.lineage import LineageMixin


class HealthAlertsOperator(LineageMixin, BaseOperator):
    """Returns the alerts (the payloads of the triggering `health_alerts` asset events). Lineage: none."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        for asset, events in context["triggering_asset_events"].items():
            if getattr(asset, "name", None) != HEALTH_ALERTS_NAME:
                continue
            for event in events:
                payload = (event.extra or {}).get("payload")
                if isinstance(payload, dict) and payload.get("member_id"):
                    alerts.append(payload)
        for alert in alerts:
            self.log.warning("Health alert: %s", alert.get("reason"))
        if not alerts:
            self.log.info("No health alert in the triggering events (a manual run?)")
        return alerts


class HealthAlertOperator(LineageMixin, BaseOperator):
    """Fails, naming the member and what is wrong with it (map it over HealthAlertsOperator's alerts).
    Lineage: none."""

    template_fields: Sequence[str] = ("alert",)
    # the map index a user sees in the UI: "<member>: <kind>"
    MAP_INDEX = "{{ task.alert.member_id }}: {{ task.alert.kind }}"

    def __init__(self, *, alert: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alert = alert

    @classmethod
    def for_each(cls, alerts: Any, task_id: str = "alert", **kwargs: Any) -> Any:
        """One task per alert (dynamic task mapping), each named after its member."""
        return cls.partial(task_id=task_id, map_index_template=cls.MAP_INDEX, **kwargs).expand(alert=alerts)

    def execute(self, context: Any) -> None:
        alert = self.alert
        message = (
            f"Health alert {alert.get('kind')} for member {alert.get('member_id')} "
            f"(cluster {alert.get('cluster_id') or '?'}): {alert.get('reason')}"
        )
        self.log.error("%s", message)
        raise AirflowFailException(message)
