"""The Ark Log catalog: one PostgreSQL row per offloaded log, built from the manifest stored in S3.

The manifest object (`<prefix>/<name>/ark.json`) is uploaded last and only after every data object
is verified, so it is both the source of truth and the proof that the log is complete in S3.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from botocore.client import BaseClient
from psycopg import sql

from datamover.ark.format import MANIFEST_NAME, MAX_MANIFEST_BYTES, ManifestError, parse_manifest, parse_time

TABLE = "ark_log_catalog"

DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    name            text PRIMARY KEY,
    start_time      timestamptz NOT NULL,
    duration_s      double precision NOT NULL,
    size_bytes      bigint NOT NULL,
    file_count      integer NOT NULL,
    s3_uri          text NOT NULL,
    manifest_sha256 text NOT NULL,
    checksums       jsonb NOT NULL,      -- data file path -> sha256
    offloaded_at    timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now()
)
"""

UPSERT = """
INSERT INTO {table} (name, start_time, duration_s, size_bytes, file_count, s3_uri, manifest_sha256, checksums,
                     offloaded_at)
VALUES (%(name)s, %(start_time)s, %(duration_s)s, %(size_bytes)s, %(file_count)s, %(s3_uri)s,
        %(manifest_sha256)s, %(checksums)s, %(offloaded_at)s)
ON CONFLICT (name) DO UPDATE SET
    start_time = EXCLUDED.start_time, duration_s = EXCLUDED.duration_s, size_bytes = EXCLUDED.size_bytes,
    file_count = EXCLUDED.file_count, s3_uri = EXCLUDED.s3_uri, manifest_sha256 = EXCLUDED.manifest_sha256,
    checksums = EXCLUDED.checksums, offloaded_at = EXCLUDED.offloaded_at, ingested_at = now()
"""


def ensure_table(conn: psycopg.Connection, table: str = TABLE) -> None:
    conn.execute(sql.SQL(DDL).format(table=sql.Identifier(table)))


def manifest_keys(client: BaseClient, bucket: str, prefix: str) -> Iterator[str]:
    """`<prefix>/<name>/ark.json` for every log folder under the prefix (complete logs only)."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            key = f"{common['Prefix']}{MANIFEST_NAME}"
            try:
                client.head_object(Bucket=bucket, Key=key)
            except client.exceptions.ClientError:
                continue  # an interrupted offload: data but no manifest yet
            yield key


def log_name(manifest_key: str) -> str:
    """The log a manifest key belongs to: `<prefix>/<name>/ark.json` -> `<name>`."""
    return manifest_key.rstrip("/").split("/")[-2]


def row_from_s3(client: BaseClient, bucket: str, manifest_key: str) -> dict[str, Any]:
    obj = client.get_object(Bucket=bucket, Key=manifest_key)
    raw = obj["Body"].read(MAX_MANIFEST_BYTES + 1)
    name = log_name(manifest_key)
    try:
        doc = parse_manifest(raw, name)
    except ManifestError as exc:
        raise ManifestError(f"s3://{bucket}/{manifest_key}: {exc}") from None
    last_modified: datetime = obj["LastModified"]
    return {
        "name": name,
        "start_time": parse_time(doc["start_time"]),
        "duration_s": float(doc["duration_s"]),
        "size_bytes": sum(f["size"] for f in doc["files"]),
        "file_count": len(doc["files"]),
        "s3_uri": f"s3://{bucket}/{manifest_key[: -len(MANIFEST_NAME)]}",
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "checksums": json.dumps({f["path"]: f["sha256"] for f in doc["files"]}, sort_keys=True),
        "offloaded_at": last_modified,
    }


def upsert(conn: psycopg.Connection, rows: Iterable[dict[str, Any]], table: str = TABLE) -> int:
    """Insert or refresh the rows in one transaction; returns how many were written."""
    rows = list(rows)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(sql.SQL(UPSERT).format(table=sql.Identifier(table)), rows)
    return len(rows)


def names_present(conn: psycopg.Connection, names: list[str], table: str = TABLE) -> set[str]:
    """Which of `names` already have a catalog row."""
    query = sql.SQL("SELECT name FROM {table} WHERE name = ANY(%s)").format(table=sql.Identifier(table))
    return {row[0] for row in conn.execute(query, [names]).fetchall()}
