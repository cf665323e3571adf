"""S3-compatible object stores (AWS S3, Ceph RGW) from an Airflow `aws` connection.

Connection fields: login = access key id, password = secret key; extra: `endpoint_url`
(omit for AWS), `region_name`, `path` (`bucket` or `bucket/folder`, as the egress seed's S3_PATH),
`addressing_style`, `verify`. An empty login falls back to boto3's credential chain (IAM roles).
"""

from __future__ import annotations

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from datamover.errors import ConfigError
from datamover.hooks.base import DataMoverHook
from datamover.s3client import S3Endpoint, S3Path


class ObjectStoreHook(DataMoverHook):
    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    hook_name = "S3-compatible object store"

    def __init__(self, conn_id: str | None = None, endpoint_override: str | None = None) -> None:
        super().__init__(conn_id)
        self.endpoint_override = endpoint_override

    def endpoint(self) -> S3Endpoint:
        c = self.connection
        extra = c.extra_dejson or {}
        url = (
            self.endpoint_override
            or extra.get("endpoint_url")
            or (extra.get("service_config", {}).get("s3", {}).get("endpoint_url"))
        )
        if url and "://" not in url:
            url = f"http://{url}"  # the ark seed writes `server_endpoint: "127.0.0.1:38317"`
        return S3Endpoint(
            endpoint_url=url,
            region=extra.get("region_name") or "us-east-1",
            access_key=c.login or extra.get("aws_access_key_id"),
            secret_key=c.password or extra.get("aws_secret_access_key"),
            session_token=extra.get("aws_session_token"),
            path_style=extra.get("addressing_style", "path") == "path",
            verify_tls=bool(extra.get("verify", True)),
            label=self.conn_id,
        )

    def path(self) -> S3Path:
        """The connection's `path` extra (bucket or bucket/folder)."""
        raw = (self.connection.extra_dejson or {}).get("path")
        if not raw:
            raise ConfigError(
                f"Connection {self.conn_id!r} has no 'path' in its extra: add "
                '{"path": "bucket"} or {"path": "bucket/folder"}.'
            )
        return S3Path.parse(raw)

    def client(self, **kwargs: object) -> BaseClient:
        return self.endpoint().client(**kwargs)

    def check(self) -> str:
        endpoint = self.endpoint()
        try:
            buckets = endpoint.client(retries=1, connect_timeout=5, read_timeout=15).list_buckets()["Buckets"]
        except EndpointConnectionError:
            raise self.failure(
                f"cannot reach {endpoint.endpoint_url or 'AWS S3'}",
                "check extra.endpoint_url and that the service is up",
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise self.failure(
                f"S3 refused ListBuckets with {code}", "check the access key (login) and secret (password)"
            ) from None
        except BotoCoreError as exc:
            raise self.failure(f"S3 request failed: {exc}", "check the connection's extra") from None
        return f"S3 at {endpoint.endpoint_url or 'AWS'}: {len(buckets)} bucket(s) visible"
