"""What one egress_dump run does: the config with the run's overrides, turned into per-table task kwargs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from datamover.egress.config import EgressDumpConfig


def day_of(interval_start: datetime) -> str:
    """The folder date: the data interval's start day (UTC), which is the logical date of scheduled and
    backfill runs. A manual `airflow dags test egress_dump D` covers [D-1, D) and so files under D-1."""
    return interval_start.date().isoformat()


def plan_run(cfg: EgressDumpConfig, interval_start: datetime, interval_end: datetime) -> dict[str, Any]:
    day = day_of(interval_start)
    common = {
        "bucket": cfg.destination.bucket,
        "postgres_conn_id": cfg.source.postgres_conn_id,
        "s3_conn_id": cfg.destination.s3_conn_id,
        "interval_start": interval_start.isoformat(),
        "interval_end": interval_end.isoformat(),
        "compression_level": cfg.dump.compression_level,
        "part_size_mib": cfg.dump.part_size_mib,
        "upload_workers": cfg.dump.upload_workers,
        "session_timezone": cfg.source.session_timezone,
        "allow_snapshot_backfill": cfg.dump.allow_snapshot_backfill,
        "snapshot_max_lag_hours": cfg.dump.snapshot_max_lag_hours,
    }
    tables = [{**common, "table": spec.to_dict(), "key": cfg.object_key(day, spec)} for spec in cfg.tables]
    return {
        "day": day,
        "bucket": cfg.destination.bucket,
        "s3_conn_id": cfg.destination.s3_conn_id,
        "postgres_conn_id": cfg.source.postgres_conn_id,
        "day_prefix": cfg.day_prefix(day),
        "manifest_key": cfg.manifest_key(day),
        "prefix": cfg.destination.prefix,
        "lifecycle_days": cfg.bucket_rules.lifecycle_days,
        "enforce_bucket_rules": cfg.bucket_rules.enforce,
        "create_missing_bucket": cfg.bucket_rules.create_missing,
        "data_interval": {"start": interval_start.isoformat(), "end": interval_end.isoformat()},
        "compression": {"format": "gzip", "library": "isal", "level": cfg.dump.compression_level},
        "tables": tables,
    }
