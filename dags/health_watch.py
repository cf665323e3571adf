"""Health watch: alerts when a member stops publishing health statistics or stays overloaded."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from datamover.dag_defaults import default_args
from datamover.health_assets import watched_health_alerts
from datamover.operators.health import HealthAlertOperator, HealthAlertsOperator

with DAG(
    dag_id="health_watch",
    description="Alerts when a member stops publishing health statistics or stays overloaded.",
    schedule=[watched_health_alerts()],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["health", "datamover"],
    doc_md="""
### Health watch

Event-driven: the `HealthWatchTrigger` runs on the triggerer as the watcher of the `health_alerts`
asset and reads the health stream (`cartridge_agent_health_stats`, topic `datamover.health`) that every
Airflow component and worker publishes (plugins/datamover_streams.py). It raises an alert when a member

- publishes nothing for `watch.silence_timeout_s` (`silent`; task processes `*.worker` are exempt),
- or reports a reading beyond a threshold for `for_s` seconds (`high_load`: load average above;
  `low_memory`: percent of free memory below),

with the settings of `include/config/health.yaml` (section `watch`; env `DATAMOVER_HEALTH__WATCH__*`).
Every alert is an event of the asset `health_alerts` (schedule other DAGs on it to act, as the Stratos
autoscaler does) and starts a run of this DAG, whose `alert` task fails naming the member.
""",
):
    alerts = HealthAlertsOperator(task_id="alerts")
    # AirflowFailException: the alert task fails at once, its retries unused
    HealthAlertOperator.for_each(alerts.output)
