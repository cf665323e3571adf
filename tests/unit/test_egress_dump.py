"""egress_dump's pure parts: config validation, SQL composition, snapshot rules, gzip, manifest, plan."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from datamover.config import load_config, validate
from datamover.egress.bucket import BucketRules, _rule_covers
from datamover.egress.config import EgressDumpConfig, TableSpec
from datamover.egress.dump import check_snapshot_allowed, parse_interval
from datamover.egress.manifest import build_manifest
from datamover.egress.pipeline import GzipEncoder, StreamTuning
from datamover.egress.plan import plan_run
from datamover.egress.sql import Interval, build_copy, build_select, select_columns
from datamover.errors import ConfigError, UnknownSourceError

BASE = {"destination": {"bucket": "egress-dumps", "prefix": "daily"}, "tables": [{"name": "t"}]}
DAY = datetime(2026, 1, 10, tzinfo=UTC)


def cfg(**changes: object) -> dict:
    data = {**BASE, **changes}
    return data


def parse_config(data: dict, where: str) -> EgressDumpConfig:
    return validate(EgressDumpConfig, data, where)


def test_shipped_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMOVER_CONFIG_DIR", raising=False)
    config = load_config(EgressDumpConfig, "egress_dump")
    assert config.destination.bucket == "egress-dumps" and config.destination.prefix == "daily"
    assert {t.mode for t in config.tables} == {"snapshot", "incremental"}


def test_defaults() -> None:
    config = parse_config(cfg(), "x.yaml")
    assert (
        config.dump.compression_level,
        config.bucket_rules.lifecycle_days,
        config.bucket_rules.enforce,
    ) == (
        1,
        14,
        True,
    )
    assert config.tables == [TableSpec(name="t")]
    assert config.object_key("2026-01-10", config.tables[0]) == "daily/2026-01-10/t.csv.gz"
    assert config.manifest_key("2026-01-10") == "daily/2026-01-10/_manifest.json"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            cfg(tables=[{"name": "t", "mode": "incremental"}]),
            "tables[0]: mode 'incremental' needs 'timestamp_column'",
        ),
        (
            cfg(tables=[{"name": "t", "mode": "delta"}]),
            "tables[0].mode: Input should be 'snapshot' or 'incremental'",
        ),
        (cfg(tables=[{"name": "t", "colour": 1}]), "tables[0].colour: unknown key"),
        (cfg(tables=[{"name": "t"}, {"name": "t", "schema": "other"}]), "appear twice"),
        (cfg(tables=[]), "tables: List should have at least 1 item"),
        (
            cfg(tables=[{"name": "t", "columns": ["a"], "hash_columns": ["b"]}]),
            "hash_columns ['b'] are not in",
        ),
        (cfg(tables=[{"name": "t", "columns": ["a", "a"]}]), "lists a column twice"),
        (cfg(tables=[{"name": "x/../y"}]), "bad object key"),
        (cfg(destination={"bucket": "Bad_Bucket"}), "not a valid S3 bucket name"),
        (cfg(destination={"bucket": "b-1", "prefix": "/daily/"}), "without leading, trailing"),
        (
            cfg(dump={"compression_level": 9}),
            "dump.compression_level: Input should be less than or equal to 3",
        ),
        (cfg(dump={"part_size_mib": 1}), "dump.part_size_mib: Input should be greater than or equal to 5"),
        (cfg(dump={"upload_workers": "4"}), "dump.upload_workers: Input should be a valid integer"),
        (cfg(extra=1), "extra: unknown key"),
    ],
)
def test_config_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "egress_dump.yaml")
    assert message in str(err.value)
    assert "egress_dump.yaml" in str(err.value)


def test_table_selection() -> None:
    config = parse_config(cfg(tables=[{"name": "a"}, {"name": "b"}]), "x.yaml")
    assert config.select(["b"]).table_names == ["b"] and config.select([]).table_names == ["a", "b"]
    with pytest.raises(ConfigError, match=r"DAG param 'tables': 'zz' not in x\.yaml; choose from a, b"):
        config.select(["zz"], where="x.yaml")


def test_select_quotes_every_identifier_and_bounds_the_interval() -> None:
    # Validation refuses such a name as an object key; the SQL must be safe even without it.
    spec = TableSpec.model_construct(
        name='we"ird; DROP TABLE x',
        schema_name="s",
        columns=None,
        header=True,
        mode="incremental",
        timestamp_column="ts",
        order_by=["id"],
        hash_columns=["email"],
    )
    columns = select_columns(
        spec, [("id", "bigint"), ("email", "text"), ("ts", "timestamp with time zone")], "db"
    )
    interval = Interval(DAY, DAY + timedelta(days=1))
    text = build_copy(build_select(spec, columns, interval), header=True).as_string(None)
    assert '"s"."we""ird; DROP TABLE x"' in text
    assert "encode(sha256(convert_to(\"email\"::text, 'UTF8')), 'hex') AS \"email\"" in text
    assert "\"ts\" >= '2026-01-10 00:00:00+00:00'" in text and "\"ts\" < '2026-01-11 00:00:00+00:00'" in text
    assert text.endswith('ORDER BY "id") TO STDOUT (FORMAT csv, HEADER true)')


def test_snapshot_select_has_no_where() -> None:
    spec = TableSpec(name="t", columns=["b", "a"])
    columns = select_columns(spec, [("a", "int"), ("b", "text")], "db")
    assert [c.name for c in columns] == ["b", "a"]
    text = build_select(spec, columns, Interval(DAY, DAY + timedelta(days=1))).as_string(None)
    assert text == 'SELECT "b", "a" FROM "public"."t"'


@pytest.mark.parametrize(
    ("spec", "columns", "message"),
    [
        (TableSpec(name="gone"), [], "Table 'gone': relation public.gone does not exist"),
        (TableSpec(name="t", columns=["a", "nope"]), [("a", "int")], "column(s) 'nope' do not exist"),
        (
            TableSpec(name="t", mode="incremental", timestamp_column="a"),
            [("a", "integer")],
            "has type integer, not a timestamp",
        ),
    ],
)
def test_unknown_table_or_column_is_named(spec: TableSpec, columns: list, message: str) -> None:
    with pytest.raises(UnknownSourceError) as err:
        select_columns(spec, columns, "postgresql://h:5432/db")
    assert message in str(err.value)


def test_snapshot_refuses_past_days_unless_allowed() -> None:
    snap, inc = TableSpec(name="s"), TableSpec(name="i", mode="incremental", timestamp_column="ts")
    now = DAY + timedelta(days=30)
    with pytest.raises(ConfigError, match=r"Table 's': mode snapshot for a day that ended .* 720 h ago"):
        check_snapshot_allowed(snap, DAY, now, "manual", allow=False, max_lag_hours=24)
    with pytest.raises(ConfigError, match="mode snapshot in a backfill run"):
        check_snapshot_allowed(snap, DAY, DAY + timedelta(hours=1), "backfill", allow=False, max_lag_hours=24)
    check_snapshot_allowed(snap, DAY, now, "manual", allow=True, max_lag_hours=24)
    check_snapshot_allowed(inc, DAY, now, "backfill", allow=False, max_lag_hours=24)
    check_snapshot_allowed(snap, DAY, DAY + timedelta(hours=2), "scheduled", allow=False, max_lag_hours=24)


def test_interval_parsing() -> None:
    interval = parse_interval("2026-01-10 00:00:00+00:00", "2026-01-11T00:00:00+00:00")
    assert interval is not None and interval.end - interval.start == timedelta(days=1)
    assert parse_interval(None, None) is None
    same = "2026-01-10T00:00:00+00:00"
    snapshot_only = parse_interval(same, same, empty_ok=True)  # trigger timetables: start == end
    assert snapshot_only is not None and snapshot_only.end == datetime(2026, 1, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not before its end"):
        parse_interval("2026-01-11T00:00:00+00:00", "2026-01-10T00:00:00+00:00")
    with pytest.raises(ConfigError, match="not an ISO timestamp"):
        parse_interval("yesterday", "today")


def test_gzip_is_standard_and_deterministic() -> None:
    data = b"id,name\n" + b"".join(b'%d,"x, ""y"""\n' % i for i in range(50_000))

    def encode(chunk: int) -> bytes:
        enc = GzipEncoder(1)
        return b"".join(enc.compress(data[i : i + chunk]) for i in range(0, len(data), chunk)) + enc.finish()

    once = encode(1 << 20)
    assert once[:4] == b"\x1f\x8b\x08\x00" and once[4:8] == b"\x00\x00\x00\x00"  # gzip, mtime 0
    assert gzip.decompress(once) == data
    assert zlib.decompress(once, 31) == data
    assert encode(1 << 20) == once
    empty = GzipEncoder(1).finish()
    assert gzip.decompress(empty) == b""


def test_tuning_refuses_parts_below_s3_minimum() -> None:
    with pytest.raises(ValueError, match="below S3's 5 MiB minimum"):
        StreamTuning(part_size=1024)
    assert StreamTuning().memory_bound < 64 * 1024 * 1024


def _dump(table: str, rows: int, raw: int) -> dict:
    return {
        "table": table,
        "relation": f"public.{table}",
        "key": f"daily/2026-01-10/{table}.csv.gz",
        "mode": "snapshot",
        "rows": rows,
        "raw_bytes": raw,
        "compressed_bytes": raw // 4,
        "sha256": "ab",
        "header": True,
        "snapshot_time": f"2026-01-11T00:0{rows % 10}:00+00:00",
        "columns": [{"name": "id", "type": "bigint"}],
    }


def test_manifest_totals_and_order() -> None:
    manifest = build_manifest(
        day="2026-01-10",
        bucket="b",
        prefix="daily/2026-01-10",
        source="postgresql://h/db",
        tables=[_dump("zeta", 3, 400), _dump("alpha", 5, 800)],
        data_interval={"start": "s", "end": "e"},
        run_id="r",
        compression={"level": 1},
        created_at="now",
    )
    assert [t["table"] for t in manifest["tables"]] == ["alpha", "zeta"]
    assert manifest["totals"] == {"tables": 2, "rows": 8, "raw_bytes": 1200, "compressed_bytes": 300}
    assert manifest["tables"][0]["object"] == "alpha.csv.gz"
    assert manifest["snapshot_time"] == {
        "first": "2026-01-11T00:03:00+00:00",
        "last": "2026-01-11T00:05:00+00:00",
    }


def test_plan_files_the_interval_under_its_start_day() -> None:
    config = parse_config(
        cfg(tables=[{"name": "a"}, {"name": "b", "mode": "incremental", "timestamp_column": "ts"}]), "x.yaml"
    )
    plan = plan_run(config, DAY, DAY + timedelta(days=1))
    assert plan["day"] == "2026-01-10" and plan["manifest_key"] == "daily/2026-01-10/_manifest.json"
    assert [t["key"] for t in plan["tables"]] == ["daily/2026-01-10/a.csv.gz", "daily/2026-01-10/b.csv.gz"]
    assert plan["tables"][1]["table"]["timestamp_column"] == "ts"
    assert plan["tables"][0]["interval_start"] == "2026-01-10T00:00:00+00:00"


@pytest.mark.parametrize(
    ("rule", "covers"),
    [
        ({"Status": "Enabled", "Filter": {"Prefix": ""}}, True),
        ({"Status": "Enabled", "Filter": {}}, True),
        ({"Status": "Enabled", "Filter": {"Prefix": "dai"}}, True),
        ({"Status": "Enabled", "Prefix": ""}, True),
        ({"Status": "Disabled", "Filter": {"Prefix": ""}}, False),
        ({"Status": "Enabled", "Filter": {"Prefix": "other/"}}, False),
        ({"Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}}}, False),
    ],
)
def test_lifecycle_rule_coverage(rule: dict, covers: bool) -> None:
    assert _rule_covers(rule, "daily") is covers


def test_bucket_rules_match_the_seed() -> None:
    rules = BucketRules(14)
    assert rules.encryption_configuration()["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert rules.lifecycle_rule()["Expiration"] == {"Days": 14}
