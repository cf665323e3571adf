"""OpenLineage dataset names for what the datamover moves, per OpenLineage's dataset naming spec
(spec/Naming.md). Pure: no Airflow imports; the operators turn these into OpenLineage datasets.

| source            | namespace                 | name                       |
| ----------------- | ------------------------- | -------------------------- |
| PostgreSQL table  | postgres://{host}:{port}  | {database}.{schema}.{table}|
| S3 object/prefix  | s3://{bucket}             | {key or prefix}            |
| local file/folder | file://{host}             | {absolute path}            |
| Kafka topic       | kafka://{host}:{port}     | {topic}                    |

S3-compatible stores (Ceph RGW) are named like AWS S3, `s3://{bucket}`: the spec names object storage
by bucket, not by endpoint, so a bucket of the same name on AWS and on Ceph is one namespace; our
buckets are distinct per side (the mirror's input and output), so the graph stays unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

POSTGRES_DEFAULT_PORT = 5432
KAFKA_DEFAULT_PORT = 9092


@dataclass(frozen=True, order=True)
class DatasetName:
    namespace: str
    name: str

    @property
    def uri(self) -> str:
        """namespace + name as one URI (the spec's `scheme:[//authority]path`)."""
        sep = "" if self.name.startswith("/") else "/"
        return f"{self.namespace}{sep}{self.name}"


def _host(host: str | None, default: str = "localhost") -> str:
    return (host or default).strip().lower() or default


def postgres_table(
    host: str | None, port: int | str | None, database: str, table: str, schema: str | None = None
) -> DatasetName:
    """`table` may be qualified (`schema.table`); else `schema` (default `public`) is used."""
    if not database:
        raise ValueError("a PostgreSQL dataset needs its database name")
    qualified_schema, _, bare = table.rpartition(".")
    schema = qualified_schema or schema or "public"
    return DatasetName(
        f"postgres://{_host(host)}:{int(port or POSTGRES_DEFAULT_PORT)}", f"{database}.{schema}.{bare}"
    )


def s3_object(bucket: str, key: str = "") -> DatasetName:
    """An object or a prefix ("folder") in a bucket; the whole bucket is named `/`."""
    bucket = bucket.strip().removeprefix("s3://").strip("/")
    if not bucket or "/" in bucket:
        raise ValueError(f"not a bucket name: {bucket!r}")
    key = key.strip("/")
    return DatasetName(f"s3://{bucket}", key or "/")


def s3_uri(uri: str) -> DatasetName:
    """`s3://bucket/key` (or `bucket/key`) -> its dataset."""
    bucket, _, key = uri.strip().removeprefix("s3://").partition("/")
    return s3_object(bucket, key)


def join_key(*parts: str | None) -> str:
    """Key prefix parts joined with single slashes (empty parts dropped)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def local_path(host: str, path: str) -> DatasetName:
    """A local file or folder on `host` (the machine that read or wrote it)."""
    if not path.startswith("/"):
        raise ValueError(f"a local dataset needs an absolute path, got {path!r}")
    clean = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    return DatasetName(f"file://{_host(host)}", clean)


def kafka_topic(bootstrap_servers: str, topic: str) -> DatasetName:
    """The first bootstrap server names the cluster (the spec's `kafka://{host}:{port}`)."""
    first = bootstrap_servers.split(",")[0].strip()
    first = first.split("://", 1)[-1]  # PLAINTEXT://host:port listeners
    if not first or not topic:
        raise ValueError(f"a Kafka dataset needs a bootstrap server and a topic, got {bootstrap_servers!r}")
    host, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    return DatasetName(f"kafka://{_host(host)}:{int(port or KAFKA_DEFAULT_PORT)}", topic)


__all__ = ["DatasetName", "join_key", "kafka_topic", "local_path", "postgres_table", "s3_object", "s3_uri"]
