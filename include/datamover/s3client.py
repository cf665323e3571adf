"""S3 endpoints and boto3 clients, independent of Airflow.

An `S3Endpoint` is everything needed to talk to one S3-compatible service (AWS, Ceph RGW, moto);
`S3Path` is a bucket plus an optional key prefix, written `bucket` or `bucket/folder/sub` as in
the egress seed's S3_PATH.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from datamover.errors import ConfigError


@dataclass(frozen=True)
class S3Path:
    bucket: str
    prefix: str = ""  # no leading or trailing slash

    @classmethod
    def parse(cls, text: str) -> S3Path:
        """Accept `bucket`, `bucket/a/b`, `s3://bucket/a/b/`."""
        raw = text.strip()
        if raw.startswith("s3://"):
            raw = raw[5:]
        bucket, _, prefix = raw.rstrip("/").partition("/")
        if not bucket:
            raise ConfigError(f"S3 path {text!r} has no bucket: write 'bucket' or 'bucket/folder'.")
        return cls(bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        """Join the prefix and `parts` into an object key."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def child(self, *parts: str) -> S3Path:
        return S3Path(self.bucket, self.key(*parts))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class S3Endpoint:
    """Where and how to reach one S3 service. `endpoint_url` None means AWS itself."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    path_style: bool = True
    verify_tls: bool = True
    label: str = "s3"  # the Airflow connection id, for messages

    def describe(self) -> str:
        return f"connection {self.label!r} ({self.endpoint_url or 'AWS default endpoint'})"

    def client(
        self,
        service: str = "s3",
        max_pool_connections: int = 32,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        retries: int = 5,
    ) -> BaseClient:
        config = Config(
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            s3={"addressing_style": "path" if self.path_style else "auto"},
            # Ceph RGW and older S3 services reject the newer default CRC checksums on every request.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
            region_name=self.region,
        )
        return session.client(service, endpoint_url=self.endpoint_url, config=config, verify=self.verify_tls)
