"""Assets shared between DAGs, defined once, statically (no config is read to define them).

`EGRESS_DUMPS`: a complete day of egress_dump (its `_manifest.json` written). Each event's extra names
the day's folder, so a consumer knows exactly what arrived:
    {"bucket": ..., "prefix": "daily/2026-01-10", "date": "2026-01-10", "manifest_key": ".../_manifest.json",
     "manifest_sha256": ..., "tables": [...], "rows": N}
egress_sync schedules on it.

`ARK_LOGS`: one event per Ark Log offloaded and verified in S3 (extra: the log's record); catalog_ingest
schedules on it.
"""

from __future__ import annotations

from airflow.sdk import Asset

EGRESS_DUMPS = Asset(name="egress_dumps", uri="datamover://egress/dumps", group="egress")
ARK_LOGS = Asset(name="ark_logs", uri="ark://offload/logs", group="ark")
