"""The hooks against the real local services, and the connectivity_check DAG end to end."""

from __future__ import annotations

import contextlib

import pytest

from datamover.errors import ConnectionCheckError
from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.pushgateway import PushgatewayHook
from datamover.hooks.s3 import ObjectStoreHook
from tests.conftest import run_airflow

pytestmark = pytest.mark.integration


def test_postgres_hook_queries() -> None:
    hook = PostgresHook("egress_postgres")
    with hook.connect() as conn:
        assert conn.execute("SELECT 40 + 2").fetchone()[0] == 42
    assert "55432" in hook.describe() and "datamover-local" not in hook.describe()


@pytest.mark.parametrize("conn_id", ["aws_default", "egress_output"])
def test_object_store_round_trip(conn_id: str) -> None:
    client = ObjectStoreHook(conn_id).client()
    bucket = f"connectivity-{conn_id.replace('_', '-')}"
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="dir/hello world+%.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="dir/hello world+%.txt")["Body"].read() == b"hello"
    client.delete_object(Bucket=bucket, Key="dir/hello world+%.txt")


def test_kafka_hook_creates_topic_once() -> None:
    hook = KafkaHook("kafka_default")
    topic = "datamover.test.connectivity"
    hook.ensure_topics([topic])
    assert hook.ensure_topics([topic]) == []
    assert topic in hook.admin().list_topics(timeout=10).topics


def test_pushgateway_hook_push_is_visible() -> None:
    import urllib.request

    hook = PushgatewayHook("pushgateway_default")
    hook.check()
    with urllib.request.urlopen(f"{hook.url}/metrics", timeout=10) as response:
        assert b"datamover_connectivity_check_timestamp_seconds" in response.read()


def test_wrong_port_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROKEN_S3",
        '{"conn_type": "aws", "login": "x", "password": "y", '
        '"extra": {"endpoint_url": "http://127.0.0.1:1"}}',
    )
    with pytest.raises(
        ConnectionCheckError, match=r"Connection 'broken_s3': cannot reach http://127.0.0.1:1"
    ):
        ObjectStoreHook("broken_s3").check()


def test_wrong_password_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROKEN_PG", "postgresql://datamover:wrong-password@127.0.0.1:55432/datamover"
    )
    with pytest.raises(ConnectionCheckError, match="Connection 'broken_pg'") as info:
        PostgresHook("broken_pg").check()
    assert "wrong-password" not in str(info.value)


def test_connectivity_check_dag_succeeds() -> None:
    result = run_airflow("dags", "test", "connectivity_check")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for conn_id in (
        "egress_postgres",
        "aws_default",
        "egress_output",
        "kafka_default",
        "pushgateway_default",
    ):
        assert f"Connection '{conn_id}' OK" in result.stdout + result.stderr


def test_rds_iam_connection_builds_its_token_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A postgres connection with extra iam=true (the source is RDS): the provider's hook asks the aws
    connection's credentials for an RDS auth token instead of using a stored password."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_RDS_IAM",
        '{"conn_type": "postgres", "host": "egress.cluster-abc.eu-west-1.rds.amazonaws.com", "port": 5432, '
        '"login": "dumper", "schema": "app", "extra": {"iam": true, "aws_conn_id": "aws_default"}}',
    )
    hook = PostgresHook("rds_iam")
    login, token, port = hook.get_iam_token(hook.require_connection())
    assert (login, port) == ("dumper", 5432)
    assert token.startswith(
        "egress.cluster-abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=dumper"
    )
    assert "X-Amz-Signature=" in token and "X-Amz-Credential=AKIALOCALTESTKEY0001" in token
