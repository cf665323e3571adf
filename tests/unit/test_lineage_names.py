"""OpenLineage dataset naming (datamover.lineage), per the spec's table for each kind of source."""

from __future__ import annotations

import pytest

from datamover.lineage import (
    DatasetName,
    join_key,
    kafka_topic,
    local_path,
    postgres_table,
    s3_object,
    s3_uri,
)


def test_postgres_table_names_host_port_and_database_schema_table() -> None:
    d = postgres_table("DB.example", 55432, "datamover", "orders", schema="sales")
    assert d == DatasetName("postgres://db.example:55432", "datamover.sales.orders")
    assert d.uri == "postgres://db.example:55432/datamover.sales.orders"


def test_postgres_table_defaults_and_qualified_names() -> None:
    assert postgres_table(None, None, "db", "t") == DatasetName("postgres://localhost:5432", "db.public.t")
    assert postgres_table("h", "5433", "db", "ark.catalog", schema="ignored").name == "db.ark.catalog"
    with pytest.raises(ValueError):
        postgres_table("h", 1, "", "t")


def test_s3_objects_and_prefixes_are_namespaced_by_bucket() -> None:
    assert s3_object("dumps", "2026-01-05/orders.csv.gz") == DatasetName(
        "s3://dumps", "2026-01-05/orders.csv.gz"
    )
    assert s3_object("dumps", "/egress/2026-01-05/") == DatasetName("s3://dumps", "egress/2026-01-05")
    assert s3_object("dumps") == DatasetName("s3://dumps", "/")
    assert s3_object("dumps").uri == "s3://dumps/"
    assert s3_uri("s3://ark/logs/run1/") == DatasetName("s3://ark", "logs/run1")
    assert s3_uri("ark/x") == s3_object("ark", "x")
    for bad in ("", "a/b"):
        with pytest.raises(ValueError):
            s3_object(bad, "k")


def test_join_key_drops_empty_parts_and_duplicate_slashes() -> None:
    assert join_key("egress/", "", None, "/2026-01-05/") == "egress/2026-01-05"
    assert join_key("", None) == ""


def test_local_paths_are_absolute_and_namespaced_by_host() -> None:
    assert local_path("Worker-1", "/data/ark//run_7/./") == DatasetName("file://worker-1", "/data/ark/run_7")
    assert local_path("w", "/data/x").uri == "file://w/data/x"
    with pytest.raises(ValueError):
        local_path("w", "relative/path")


def test_kafka_topic_uses_the_first_bootstrap_server() -> None:
    assert kafka_topic("127.0.0.1:59092,other:9092", "butler") == DatasetName(
        "kafka://127.0.0.1:59092", "butler"
    )
    assert kafka_topic("PLAINTEXT://broker", "t") == DatasetName("kafka://broker:9092", "t")
    with pytest.raises(ValueError):
        kafka_topic("", "t")
    with pytest.raises(ValueError):
        kafka_topic("h:1", "")
