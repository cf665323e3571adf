"""egress_dump against the real PostgreSQL and the moto S3 endpoint: bytes, intervals, aborts, bucket
rules, and the DAG end to end with `airflow dags test`."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from datamover.egress.bucket import BucketRules, check_bucket, preflight
from datamover.egress.config import TableSpec
from datamover.egress.dump import TableDump, dump_table, prepare_session
from datamover.egress.pipeline import StreamTuning
from datamover.egress.sql import Interval
from datamover.errors import ConfigError, UnknownSourceError
from datamover.units import MIB
from tests.conftest import deployment_config, moto_client, run_airflow
from tests.support.egress_seed import seed

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

SCHEMA = "egress_it"
BUCKET = "egress-dump-it"
SMALL_PARTS = StreamTuning(part_size=5 * MIB, upload_workers=3)
DAY = datetime(2026, 1, 10, tzinfo=UTC)

KITCHEN_SINK = f"""
DROP TABLE IF EXISTS {SCHEMA}.kitchen_sink;
CREATE TABLE {SCHEMA}.kitchen_sink (
    id int, txt text, vc varchar(40), num numeric(24, 6), f8 double precision, ts timestamptz,
    tsn timestamp, d date, b bytea, arr int[], tarr text[], js json, jsb jsonb, flag boolean, u uuid,
    iv interval
);
INSERT INTO {SCHEMA}.kitchen_sink VALUES
 (1, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, '', 'a,b', 1.5, 'NaN', '2026-01-10 12:34:56.789+02', '2026-01-10 12:34:56', '2026-01-10',
  '\\x00ff10', '{{1,2,NULL}}', '{{"a,b","c\\"d",NULL,""}}', '{{"k": [1, "x,y"]}}', '{{"k": "v\\n"}}', true,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04'),
 (3, 'he said "hi", then left', E'line1\\nline2', -123456789.000001, 1e-300, 'infinity', '-infinity',
  '0001-01-01 BC', '', '{{}}', '{{}}', '[]', 'null', false, NULL, '-1 mon'),
 (4, 'ünïcödé ✓ 漢字 🎉', E'tab\\there', 0, -0.0, '1999-12-31 23:59:59.999999+00', NULL, NULL,
  E'\\\\x5c4e', NULL, '{{"ü"}}', '"string"', '{{"nested": {{"a": null}}}}', NULL, NULL, NULL),
 (5, E'carriage\\r\\nreturn', '\\N', 99999999999999.999999, 'Infinity', NULL, NULL, NULL, NULL,
  '{{{{1,2}},{{3,4}}}}', NULL, NULL, NULL, NULL, NULL, NULL),
 (6, ',', '"', NULL, 3.141592653589793, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""

# ~110 bytes per row of poorly compressible hex: 5 MiB parts fill after ~100k rows.
FAILS_MIDWAY = f"""
CREATE OR REPLACE VIEW {SCHEMA}.fails_midway AS
SELECT g AS id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS junk,
       CASE WHEN g = 300000 THEN 1 / (g - g) ELSE g END AS boom
FROM generate_series(1, 400000) AS g;
CREATE OR REPLACE VIEW {SCHEMA}.multipart AS
SELECT g AS id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS junk
FROM generate_series(1, 200000) AS g;
"""


@pytest.fixture(scope="module")
def dsn() -> str:
    return os.environ["DATAMOVER_PG_DSN"]


@pytest.fixture(scope="module")
def s3() -> Any:
    return moto_client()


@pytest.fixture(scope="module", autouse=True)
def tables(dsn: str, s3: Any) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(KITCHEN_SINK)
        conn.execute(FAILS_MIDWAY)
        conn.execute(f"""
            DROP TABLE IF EXISTS {SCHEMA}.events, {SCHEMA}.empty, {SCHEMA}.people;
            CREATE TABLE {SCHEMA}.events (id int, at timestamptz);
            INSERT INTO {SCHEMA}.events VALUES
              (1, '2026-01-09 23:59:59.999999+00'), (2, '2026-01-10 00:00:00+00'),
              (3, '2026-01-10 12:00:00+00'), (4, '2026-01-10 23:59:59.999999+00'),
              (5, '2026-01-11 00:00:00+00'), (6, '2026-01-11 01:00:00+00'), (7, NULL);
            CREATE TABLE {SCHEMA}.empty (id int, name text);
            CREATE TABLE {SCHEMA}.people (id int, email text);
            INSERT INTO {SCHEMA}.people VALUES (1, 'a@example.com'), (2, NULL);
        """)
    preflight(s3, BUCKET, BucketRules(14), create_missing=True)


def dump(
    dsn: str,
    s3: Any,
    spec: TableSpec,
    key: str,
    interval: Interval | None = None,
    tuning: StreamTuning = SMALL_PARTS,
    bucket: str = BUCKET,
) -> TableDump:
    with psycopg.connect(dsn) as conn:
        prepare_session(conn, "UTC")
        return dump_table(
            conn, s3, spec, bucket=bucket, key=key, interval=interval, tuning=tuning, source="test"
        )


def get(s3: Any, key: str, bucket: str = BUCKET) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def psql_copy(query: str, header: bool = True) -> bytes:
    """psql's own output, the reference the dump must equal byte for byte."""
    options = "FORMAT csv, HEADER" if header else "FORMAT csv"
    return subprocess.run(
        ["psql", "-X", "-q", "-c", f"\\copy ({query}) TO STDOUT ({options})"],
        check=True,
        capture_output=True,
        env={**os.environ, "PGTZ": "UTC"},
    ).stdout


def gunzip(data: bytes) -> bytes:
    """With the system's gunzip, not Python: the objects must be plain gzip."""
    return subprocess.run(["gunzip", "-c"], input=data, check=True, capture_output=True).stdout


def test_object_equals_psql_copy_bytes(dsn: str, s3: Any) -> None:
    result = dump(dsn, s3, TableSpec(name="kitchen_sink", schema=SCHEMA), "t/kitchen_sink.csv.gz")
    body = get(s3, "t/kitchen_sink.csv.gz")
    expected = psql_copy(f"SELECT * FROM {SCHEMA}.kitchen_sink")
    assert gunzip(body) == expected
    assert b'"he said ""hi"", then left"' in expected and "漢字".encode() in expected  # the cases are there
    assert result.rows == 6 and result.raw_bytes == len(expected)
    assert result.compressed_bytes == len(body) and result.sha256 == hashlib.sha256(body).hexdigest()
    assert [c["type"] for c in result.columns][:5] == [
        "integer",
        "text",
        "character varying(40)",
        "numeric(24,6)",
        "double precision",
    ]
    assert s3.head_object(Bucket=BUCKET, Key="t/kitchen_sink.csv.gz")["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("threaded", [False, True], ids=["inline-gzip", "gzip-thread"])
def test_multipart_object_and_rerun_give_the_same_bytes(dsn: str, s3: Any, threaded: bool) -> None:
    spec = TableSpec(name="multipart", schema=SCHEMA)
    tuning = StreamTuning(part_size=5 * MIB, upload_workers=3, threaded=threaded)
    first = dump(dsn, s3, spec, "t/multipart.csv.gz", tuning=tuning)
    etag = s3.head_object(Bucket=BUCKET, Key="t/multipart.csv.gz")["ETag"]
    second = dump(dsn, s3, spec, "t/multipart.csv.gz", tuning=tuning)
    head = s3.head_object(Bucket=BUCKET, Key="t/multipart.csv.gz")
    assert first.parts >= 2 and first.rows == 200_000
    assert (second.sha256, second.compressed_bytes, head["ETag"]) == (
        first.sha256,
        first.compressed_bytes,
        etag,
    )
    assert head["ServerSideEncryption"] == "AES256"
    body = get(s3, "t/multipart.csv.gz")
    assert hashlib.sha256(body).hexdigest() == first.sha256
    expected = psql_copy(f"SELECT * FROM {SCHEMA}.multipart")
    assert zlib.decompress(body, 31) == expected


def test_incremental_selects_exactly_the_interval(dsn: str, s3: Any) -> None:
    spec = TableSpec(name="events", schema=SCHEMA, mode="incremental", timestamp_column="at", order_by=["id"])
    result = dump(dsn, s3, spec, "t/events.csv.gz", Interval(DAY, DAY + timedelta(days=1)))
    lines = gzip.decompress(get(s3, "t/events.csv.gz")).decode().splitlines()
    assert lines[0] == "id,at"
    assert [line.split(",")[0] for line in lines[1:]] == ["2", "3", "4"]
    assert result.rows == 3 and result.interval == {
        "start": DAY.isoformat(),
        "end": (DAY + timedelta(days=1)).isoformat(),
    }


def test_empty_table_gives_a_valid_gzip(dsn: str, s3: Any) -> None:
    with_header = dump(dsn, s3, TableSpec(name="empty", schema=SCHEMA), "t/empty.csv.gz")
    assert gunzip(get(s3, "t/empty.csv.gz")) == b"id,name\n"
    assert with_header.rows == 0 and with_header.parts == 0
    dump(dsn, s3, TableSpec(name="empty", schema=SCHEMA, header=False), "t/empty-nohdr.csv.gz")
    assert gunzip(get(s3, "t/empty-nohdr.csv.gz")) == b""


def test_hash_columns_export_sha256(dsn: str, s3: Any) -> None:
    dump(
        dsn,
        s3,
        TableSpec(name="people", schema=SCHEMA, hash_columns=["email"], order_by=["id"]),
        "t/people.csv.gz",
    )
    digest = hashlib.sha256(b"a@example.com").hexdigest()
    assert gzip.decompress(get(s3, "t/people.csv.gz")) == f"id,email\n1,{digest}\n2,\n".encode()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            TableSpec(name="no_such_table", schema=SCHEMA),
            "Table 'no_such_table': relation egress_it.no_such_table",
        ),
        (
            TableSpec(name="events", schema=SCHEMA, columns=["id", "colour"]),
            "column(s) 'colour' do not exist",
        ),
    ],
)
def test_unknown_table_or_column_fails_naming_it(dsn: str, s3: Any, spec: TableSpec, message: str) -> None:
    with pytest.raises(UnknownSourceError) as err:
        dump(dsn, s3, spec, f"t/{spec.name}-unknown.csv.gz")
    assert message in str(err.value)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=f"t/{spec.name}-unknown.csv.gz")


@pytest.mark.parametrize("threaded", [False, True], ids=["inline-gzip", "gzip-thread"])
def test_query_failing_midway_aborts_the_upload(dsn: str, s3: Any, threaded: bool) -> None:
    calls: list[str] = []
    tuning = StreamTuning(part_size=5 * MIB, upload_workers=3, threaded=threaded)
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name), "spy")
    try:
        with pytest.raises(psycopg.errors.DivisionByZero):
            dump(
                dsn, s3, TableSpec(name="fails_midway", schema=SCHEMA), "t/fails_midway.csv.gz", tuning=tuning
            )
    finally:
        s3.meta.events.unregister("before-call.s3.*", unique_id="spy")
    assert "CreateMultipartUpload" in calls and calls.count("UploadPart") >= 2  # it got well under way
    assert "AbortMultipartUpload" in calls and "CompleteMultipartUpload" not in calls
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="t/fails_midway.csv.gz")


def test_missing_bucket_fails_without_leftovers(dsn: str, s3: Any) -> None:
    with pytest.raises(ClientError, match="NoSuchBucket"):
        dump(
            dsn, s3, TableSpec(name="multipart", schema=SCHEMA), "t/x.csv.gz", bucket="egress-dump-it-absent"
        )


@pytest.fixture
def bare_bucket(s3: Any) -> Iterator[str]:
    name = f"egress-dump-it-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    yield name
    s3.delete_bucket(Bucket=name)


def test_preflight_catches_a_bucket_without_rules(s3: Any, bare_bucket: str) -> None:
    rules = BucketRules(14, prefix="daily")
    with pytest.raises(ConfigError) as err:
        preflight(s3, bare_bucket, rules, create_missing=False)
    assert "has no default server-side encryption" in str(err.value)
    assert "no enabled lifecycle rule expiring objects under 'daily' after 14 days" in str(err.value)
    assert preflight(s3, bare_bucket, rules, enforce=False).problems  # reported, not raised

    s3.put_bucket_lifecycle_configuration(
        Bucket=bare_bucket,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "keep-long", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}
            ]
        },
    )
    assert any("keeps objects 30 days" in p for p in check_bucket(s3, bare_bucket, rules).problems)

    report = preflight(s3, bare_bucket, rules, apply=True)
    assert report.ok and report.applied
    assert (
        s3.get_bucket_encryption(Bucket=bare_bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
            "ApplyServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "AES256"
    )
    rule_ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bare_bucket)["Rules"]}
    assert rule_ids == {"keep-long", "datamover-egress-expire"}  # the bucket's own rule is kept


def test_preflight_creates_a_missing_bucket_with_rules(s3: Any) -> None:
    name = f"egress-dump-it-{uuid.uuid4().hex[:8]}"
    try:
        report = preflight(s3, name, BucketRules(7))
        assert report.created and report.ok
        assert check_bucket(s3, name, BucketRules(7)).facts == [
            "default encryption AES256",
            "objects expire after 7 days",
        ]
    finally:
        s3.delete_bucket(Bucket=name)


# --- the DAG end to end --------------------------------------------------------------------------------


def _manifest(s3: Any, bucket: str, day: str, prefix: str = "daily") -> dict[str, Any]:
    return json.loads(get(s3, f"{prefix}/{day}/_manifest.json", bucket))


def test_dags_test_dumps_the_day_with_a_manifest(dsn: str, s3: Any) -> None:
    seed(dsn)
    today = datetime.now(UTC).date()
    result = run_airflow("dags", "test", "egress_dump", today.isoformat())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for table in ("tally_snapshots", "subscription_capacity"):
        assert f"Table '{table}': Data collection started." in output
        assert f"Table '{table}': Dump uploaded to intermediate storage." in output
    assert "Success." in output

    day = (today - timedelta(days=1)).isoformat()  # a run for D covers [D-1, D)
    manifest = _manifest(s3, "egress-dumps", day)
    with psycopg.connect(dsn) as conn:
        expected = {
            "tally_snapshots": conn.execute(
                "SELECT count(*) FROM egress_demo.tally_snapshots WHERE updated_at >= %s AND updated_at < %s",
                (
                    datetime.fromisoformat(day).replace(tzinfo=UTC),
                    datetime.fromisoformat(today.isoformat()).replace(tzinfo=UTC),
                ),
            ).fetchone()[0],
            "subscription_capacity": conn.execute(
                "SELECT count(*) FROM egress_demo.subscription_capacity"
            ).fetchone()[0],
        }
    assert {t["table"]: t["rows"] for t in manifest["tables"]} == expected
    assert manifest["totals"]["rows"] == sum(expected.values()) and expected["tally_snapshots"] > 0
    assert "datamover-local" not in json.dumps(manifest)  # no secrets
    for entry in manifest["tables"]:
        body = get(s3, entry["key"], "egress-dumps")
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert gzip.decompress(body).count(b"\n") >= entry["rows"] + 1
    newest = max(
        o["LastModified"]
        for o in s3.list_objects_v2(Bucket="egress-dumps", Prefix=f"daily/{day}/")["Contents"]
    )
    manifest_time = s3.head_object(Bucket="egress-dumps", Key=f"daily/{day}/_manifest.json")["LastModified"]
    assert manifest_time == newest  # written last


def test_a_failing_table_blocks_the_manifest_but_not_the_others(s3: Any, tmp_path: Path) -> None:
    bucket = "egress-dump-it-dag"
    env = deployment_config(
        tmp_path / "config",
        egress_dump={
            "destination": {"bucket": bucket, "prefix": "daily"},
            "tables": [
                {"name": "subscription_capacity", "schema": "egress_demo"},
                {"name": "vanished_table", "schema": "egress_demo"},
            ],
        },
    )
    today = datetime.now(UTC).date()
    day = (today - timedelta(days=1)).isoformat()
    result = run_airflow("dags", "test", "egress_dump", today.isoformat(), env=env)
    output = result.stdout + result.stderr
    assert "up_for_retry" not in output.lower()  # failed at once
    assert "Table 'vanished_table': relation egress_demo.vanished_table does not exist" in output
    assert "Table 'subscription_capacity': Dump uploaded to intermediate storage." in output
    s3.head_object(Bucket=bucket, Key=f"daily/{day}/subscription_capacity.csv.gz")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=f"daily/{day}/_manifest.json")
    assert "Success." not in output


def test_snapshot_table_refuses_a_past_day_unless_allowed(dsn: str, s3: Any) -> None:
    seed(dsn)
    refused = run_airflow("dags", "test", "egress_dump", "2026-01-10")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        "Table 'subscription_capacity': mode snapshot for a day that ended 2026-01-10T00:00:00+00:00"
        in output
    )
    assert "Table 'tally_snapshots': Dump uploaded to intermediate storage." in output  # incremental is fine
    with pytest.raises(ClientError):
        s3.head_object(Bucket="egress-dumps", Key="daily/2026-01-09/_manifest.json")

    allowed = run_airflow(
        "dags", "test", "egress_dump", "2026-01-10", "--conf", json.dumps({"allow_snapshot_backfill": "yes"})
    )
    assert allowed.returncode == 0, (allowed.stdout + allowed.stderr)[-3000:]
    manifest = _manifest(s3, "egress-dumps", "2026-01-09")
    assert {t["table"]: t["rows"] for t in manifest["tables"]}["tally_snapshots"] == 0  # no rows that day


def test_a_malformed_config_fails_at_once_and_other_dags_still_import(tmp_path: Path) -> None:
    """Bad YAML fails the run in seconds, naming the file, without retries; and since no DAG file reads
    a config at import, every DAG still parses."""
    env = deployment_config(tmp_path / "config", egress_dump="destination: {bucket: b-1\ntables: [")
    result = run_airflow("dags", "test", "egress_dump", datetime.now(UTC).date().isoformat(), env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "egress_dump.yaml is not valid YAML" in output
    assert "up_for_retry" not in output.lower()
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "bag = DagBag(sys.argv[1]); print(json.dumps([bag.import_errors, sorted(bag.dag_ids)]))"
    )
    parsed = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    errors, dag_ids = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert errors == {} and {"egress_dump", "egress_sync", "ark_offload", "catalog_ingest"} <= set(dag_ids)


def test_an_unknown_table_in_the_form_fails_at_once(tmp_path: Path) -> None:
    conf = json.dumps({"tables": ["tally_snapshot"]})
    result = run_airflow("dags", "test", "egress_dump", datetime.now(UTC).date().isoformat(), "--conf", conf)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "DAG param 'tables': 'tally_snapshot' not in" in output
    assert "choose from tally_snapshots, subscription_capacity" in output
    assert "up_for_retry" not in output.lower()
