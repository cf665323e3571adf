"""Shared steps of the log_archival integration tests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from datamover.logdog.archive import IndexRules
from datamover.logdog.archivist import Archivist, ArchivistSettings
from datamover.logdog.butler import check_bundle_entry, parse_message
from datamover.logdog.coordinator import Delays
from datamover.logdog.storage import Collector, WriteResult
from datamover.s3 import S3Path
from tests.logdog.refs import assert_valid, check_data_file, ref_read

NO_DELAYS = Delays(timedelta(0), timedelta(days=1), timedelta(0))
ALL_ENTRIES = IndexRules()


def store_messages(conn: psycopg.Connection, schema: str, messages: list[bytes]) -> WriteResult:
    """What the collector does with each message, without Kafka in between."""
    parts = []
    for m in messages:
        bundle = parse_message(m)
        for be in bundle.entries:
            part = check_bundle_entry(bundle, be)
            if part is not None:
                parts.append(part)
    return Collector(conn, schema).write(parts)


def settings(
    buckets: tuple[str, str], rules: IndexRules = ALL_ENTRIES, delays: Delays = NO_DELAYS, **kw: Any
) -> ArchivistSettings:
    return ArchivistSettings(
        staging_base=S3Path(buckets[0], "datamover"),
        base=S3Path(buckets[1], "datamover"),
        rules=rules,
        delays=delays,
        **kw,
    )


def archivist(
    conn: psycopg.Connection, schema: str, client: Any, st: ArchivistSettings, owner: str = "test", **kw: Any
) -> Archivist:
    data_conn = psycopg.connect(conn.info.dsn, password=conn.info.password)
    return Archivist(conn, data_conn, schema, client, st, owner, **kw)


def stream_ids(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    rows = conn.execute(f'SELECT path, id FROM "{schema}".log_streams').fetchall()
    conn.commit()
    return {path.split("/+/", 1)[1]: sid for path, sid in rows}


def download(client: Any, url: str, dest: Path) -> Path:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    client.download_file(bucket, key, str(dest))
    return dest


def check_archive(client: Any, outcome: dict[str, Any], rules: IndexRules, workdir: Path) -> dict[str, Any]:
    """Download the final objects and have LUCI's code validate and rebuild them."""
    workdir.mkdir(parents=True, exist_ok=True)
    entries = download(client, outcome["entries_url"], workdir / "logstream.entries")
    index = download(client, outcome["index_url"], workdir / "logstream.index")
    data = download(client, outcome["data_url"], workdir / "data") if outcome.get("data_url") else None
    if data is not None:
        return check_data_file(entries, index, data, rules)
    report = ref_read(entries, index, None, rules)
    assert_valid(report)
    return report


def list_keys(client: Any, bucket: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys
