"""Fixtures for the log_archival tests: a private PostgreSQL schema, Kafka topic and Ceph buckets per
test (names carry a uuid: other developers run tests against the same services)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.storage import ensure_schema
from datamover.s3 import create_bucket


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def pg() -> Iterator[psycopg.Connection]:
    conn = PostgresHook("logdog_postgres").connect()
    yield conn
    conn.close()


@pytest.fixture
def schema(pg: psycopg.Connection, uid: str) -> Iterator[str]:
    name = f"logdog_t_{uid}"
    ensure_schema(pg, name)
    yield name
    pg.rollback()
    pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    pg.commit()


@pytest.fixture
def kafka() -> KafkaHook:
    return KafkaHook("kafka_default")


@pytest.fixture
def topic(kafka: KafkaHook, uid: str) -> Iterator[str]:
    name = f"logdog.test.{uid}"
    kafka.ensure_topics([name], partitions=2)
    yield name
    kafka.admin().delete_topics([name], operation_timeout=10)


def produce(kafka: KafkaHook, topic: str, messages: list[bytes], key: bytes | None = None) -> None:
    producer = kafka.producer()
    for i, value in enumerate(messages):
        producer.produce(topic, value=value, key=key if key is not None else str(i % 7).encode())
    assert producer.flush(30) == 0


@pytest.fixture
def s3() -> ObjectStoreHook:
    return ObjectStoreHook("logdog_archive")


@pytest.fixture
def buckets(s3: ObjectStoreHook, uid: str) -> Iterator[tuple[str, str]]:
    """(staging bucket, archive bucket) on Ceph, emptied and removed afterwards."""
    client = s3.client()
    names = (f"logdog-staging-{uid}", f"logdog-archive-{uid}")
    for name in names:
        create_bucket(client, name)
    yield names
    for name in names:
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


ROOT_DIR = Path(__file__).resolve().parents[3]
