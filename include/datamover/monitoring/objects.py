"""The two object-store reads the monitor makes, over a ready boto3 S3 client (no Airflow here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from datamover.errors import ConfigError
from datamover.monitoring.expected import MAX_EXPECTED_FILE_BYTES
from datamover.s3 import error_code, is_not_found


def _no_bucket(exc: Exception, bucket: str) -> ConfigError | None:
    if isinstance(exc, ClientError) and error_code(exc) == "NoSuchBucket":
        return ConfigError(
            f"Bucket {bucket!r} does not exist on the object store: fix object_store.bucket / "
            "object_store.connection in include/config/transfer_monitoring.yaml."
        )
    return None


def get_small_object(
    client: Any, bucket: str, key: str, limit: int = MAX_EXPECTED_FILE_BYTES
) -> bytes | None:
    """The body of a small object (at most `limit` + 1 bytes are read, so the parser can refuse a bigger
    one), or None when there is no such key."""
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if (config_error := _no_bucket(exc, bucket)) is not None:
            raise config_error from None
        if is_not_found(exc):
            return None
        raise
    with response["Body"] as body:
        return body.read(limit + 1)


def list_prefix(client: Any, bucket: str, prefix: str) -> list[tuple[str, datetime]]:
    """(key, LastModified in UTC) of every object under `prefix/` (an exposure holds ~400)."""
    out = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            for item in page.get("Contents", []):
                out.append((item["Key"], item["LastModified"].astimezone(UTC)))
    except ClientError as exc:
        if (config_error := _no_bucket(exc, bucket)) is not None:
            raise config_error from None
        raise
    return out
