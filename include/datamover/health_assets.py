"""The health alerts asset: one event per alert of the health watch (extra["payload"] = the alert:
member_id, kind silent | high_load | low_memory, reason, since_ms, at_ms, value, cluster_id).

Schedule on it to act on alerts (`schedule=[HEALTH_ALERTS]`, or `Asset.ref(name="health_alerts")`); the
health_watch DAG owns its watcher (`watched_health_alerts()`): the HealthWatchTrigger on the triggerer.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetWatcher

from datamover.triggers.health import HealthWatchTrigger

HEALTH_ALERTS_NAME = "health_alerts"
HEALTH_ALERTS_URI = "datamover://health/alerts"
HEALTH_ALERTS = Asset(name=HEALTH_ALERTS_NAME, uri=HEALTH_ALERTS_URI, group="health")


def watched_health_alerts(overrides: dict[str, Any] | None = None) -> Asset:
    """HEALTH_ALERTS with the health watch as its watcher (`overrides`: dotted keys of health.yaml)."""
    return Asset(
        name=HEALTH_ALERTS_NAME,
        uri=HEALTH_ALERTS_URI,
        group="health",
        watchers=[AssetWatcher(name="health_watch", trigger=HealthWatchTrigger(overrides=overrides))],
    )
