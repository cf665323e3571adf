"""A mirror run's summary as Prometheus metrics (pushed to the Pushgateway by the summary task)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge

from datamover.mirror.engine import MirrorResult


def summary_registry(result: MirrorResult, job: str = "egress_sync") -> CollectorRegistry:
    registry = CollectorRegistry()
    prefix = f"datamover_{job}"
    objects = Gauge(f"{prefix}_objects", "Objects in the last run, by result", ["result"], registry=registry)
    for name in ("copied", "skipped", "removed", "failed", "vanished"):
        objects.labels(result=name).set(getattr(result, name))
    for name, help_text, value in (
        ("source_bytes", "Bytes at the source in the run's scope", result.source_bytes),
        ("total_bytes", "Bytes that needed copying", result.total_bytes),
        ("transferred_bytes", "Bytes copied and verified", result.transferred_bytes),
        ("duration_seconds", "Wall time of the copy", result.seconds),
        ("speed_bytes_per_second", "Transferred bytes per second", result.transferred_bytes / result.seconds),
        ("success", "1 if the last run had no failed object", 0 if result.failed else 1),
        ("last_run_timestamp_seconds", "When the last run finished", result.finished or time.time()),
    ):
        Gauge(f"{prefix}_{name}", help_text, registry=registry).set(value)
    return registry
