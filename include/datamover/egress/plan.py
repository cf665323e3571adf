"""What one egress_dump run does: the config with the run's overrides, turned into per-table task kwargs."""

from __future__ import annotations

from collections.abc import Mapping
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
        "bucket": cfg.bucket,
        "postgres_conn_id": cfg.postgres_conn_id,
        "s3_conn_id": cfg.s3_conn_id,
        "interval_start": interval_start.isoformat(),
        "interval_end": interval_end.isoformat(),
        "compression_level": cfg.compression_level,
        "part_size_mib": cfg.part_size_mib,
        "upload_workers": cfg.upload_workers,
        "session_timezone": cfg.session_timezone,
        "allow_snapshot_backfill": cfg.allow_snapshot_backfill,
        "snapshot_max_lag_hours": cfg.snapshot_max_lag_hours,
    }
    tables = []
    for spec in cfg.tables:
        d = spec.to_dict()
        tables.append(
            {
                **common,
                "table": d["name"],
                "schema": d["schema"],
                "mode": d["mode"],
                "timestamp_column": d["timestamp_column"],
                "columns": d["columns"],
                "hash_columns": d["hash_columns"],
                "order_by": d["order_by"],
                "header": d["header"],
                "key": cfg.object_key(day, spec),
            }
        )
    return {
        "day": day,
        "bucket": cfg.bucket,
        "s3_conn_id": cfg.s3_conn_id,
        "postgres_conn_id": cfg.postgres_conn_id,
        "day_prefix": cfg.day_prefix(day),
        "manifest_key": cfg.manifest_key(day),
        "prefix": cfg.prefix,
        "lifecycle_days": cfg.lifecycle_days,
        "enforce_bucket_rules": cfg.enforce_bucket_rules,
        "create_missing_bucket": cfg.create_missing_bucket,
        "data_interval": {"start": interval_start.isoformat(), "end": interval_end.isoformat()},
        "compression": {"format": "gzip", "library": "isal", "level": cfg.compression_level},
        "tables": tables,
    }


def overrides_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "tables",
        "bucket",
        "prefix",
        "postgres_conn_id",
        "s3_conn_id",
        "compression_level",
        "allow_snapshot_backfill",
        "enforce_bucket_rules",
    )
    return {k: params.get(k) for k in keys}
