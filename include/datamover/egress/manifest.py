"""`_manifest.json`: written last in a day's folder, so its presence marks a complete day."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from datamover.errors import TransferError

FORMAT = "datamover.egress_dump/1"
MANIFEST_NAME = "_manifest.json"


def build_manifest(
    *,
    day: str,
    bucket: str,
    prefix: str,
    source: str,
    tables: Iterable[Mapping[str, Any]],
    data_interval: Mapping[str, str],
    run_id: str,
    compression: Mapping[str, Any],
    created_at: str,
) -> dict[str, Any]:
    """The day's manifest. `tables` are TableDump.to_dict() results; objects are listed by name."""
    entries = sorted((dict(t) for t in tables), key=lambda t: t["table"])
    names = [t["table"] for t in entries]
    if len(set(names)) != len(names):
        raise TransferError(f"Manifest for {day}: table(s) listed twice: {names}")
    snapshot_times = sorted(t["snapshot_time"] for t in entries)
    return {
        "format": FORMAT,
        "date": day,
        "bucket": bucket,
        "prefix": prefix,
        "data_interval": dict(data_interval),
        "source": source,  # host:port/database, never credentials
        "run_id": run_id,
        "created_at": created_at,
        "compression": dict(compression),
        # Each table has its own read snapshot (see the DAG doc); the range shows how far apart they are.
        "snapshot_time": {"first": snapshot_times[0], "last": snapshot_times[-1]} if snapshot_times else None,
        "totals": {
            "tables": len(entries),
            "rows": sum(t["rows"] for t in entries),
            "raw_bytes": sum(t["raw_bytes"] for t in entries),
            "compressed_bytes": sum(t["compressed_bytes"] for t in entries),
        },
        "tables": [
            {
                "table": t["table"],
                "relation": t["relation"],
                "object": t["key"].rsplit("/", 1)[-1],
                "key": t["key"],
                "mode": t["mode"],
                "timestamp_column": t.get("timestamp_column"),
                "interval": t.get("interval"),
                "rows": t["rows"],
                "header": t["header"],
                "raw_bytes": t["raw_bytes"],
                "compressed_bytes": t["compressed_bytes"],
                "sha256": t["sha256"],
                "snapshot_time": t["snapshot_time"],
                "columns": t["columns"],
            }
            for t in entries
        ],
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def verify_objects(client: Any, bucket: str, tables: Iterable[Mapping[str, Any]]) -> None:
    """Every object the manifest will name exists with the size the dump reported."""
    problems = []
    for t in tables:
        try:
            size = client.head_object(Bucket=bucket, Key=t["key"])["ContentLength"]
        except ClientError as exc:
            problems.append(
                f"s3://{bucket}/{t['key']} is missing ({exc.response.get('Error', {}).get('Code')})"
            )
            continue
        if size != t["compressed_bytes"]:
            problems.append(
                f"s3://{bucket}/{t['key']} has {size} bytes, the dump wrote {t['compressed_bytes']}"
            )
    if problems:
        raise TransferError("Not writing the manifest: " + "; ".join(problems) + ". Rerun the day's dump.")


def put_manifest(client: Any, bucket: str, key: str, manifest: Mapping[str, Any]) -> str:
    """Upload the manifest with SSE; returns its sha256."""
    body = manifest_bytes(manifest)
    client.put_object(
        Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256", ContentType="application/json"
    )
    return hashlib.sha256(body).hexdigest()


def delete_manifest(client: Any, bucket: str, key: str) -> bool:
    """Before a (re)run rewrites a day's objects: the old manifest no longer vouches for them."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    client.delete_object(Bucket=bucket, Key=key)
    return True
