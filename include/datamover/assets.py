"""Assets shared between DAGs, defined once.

`EGRESS_DUMPS`: a complete day of egress_dump (its `_manifest.json` written). Its URI is the dump
bucket/prefix from include/config/egress_dump.yaml; each event's extra carries the day's folder:
    {"bucket": ..., "prefix": "daily/2026-01-10", "date": "2026-01-10", "manifest_key": ".../_manifest.json",
     "tables": [...], "rows": N}
egress_sync schedules on it: `schedule=[EGRESS_DUMPS]` (or `Asset.ref(name="egress_dumps")`).

`ARK_LOGS`: an Ark Log offloaded and verified in S3; catalog_ingest schedules on it.
"""

from __future__ import annotations

from airflow.sdk import Asset

from datamover.egress.config import cached_config

EGRESS_DUMPS_NAME = "egress_dumps"


def egress_dumps_asset() -> Asset:
    cfg = cached_config()
    uri = f"s3://{cfg.bucket}/{cfg.prefix}" if cfg.prefix else f"s3://{cfg.bucket}"
    return Asset(name=EGRESS_DUMPS_NAME, uri=uri, group="egress")


EGRESS_DUMPS = egress_dumps_asset()

# One event per offloaded Ark Log (extra: the catalog record); catalog_ingest is scheduled on it.
ARK_LOGS = Asset(name="ark_logs", uri="ark://offload/logs", group="ark")
