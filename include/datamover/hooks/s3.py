"""AWS S3 and S3-compatible stores (Ceph RGW) through the amazon provider's S3Hook.

The connection is a plain provider `aws` connection, so everything the provider supports works:
login/password = access key/secret (empty = the default credential chain: instance or task role),
extra `region_name`, `endpoint_url` (omit for AWS), `role_arn` (assume role), `verify` (false or a CA
bundle path), `config_kwargs` (botocore Config). Ours on top: extra `path` (`bucket` or
`bucket/folder`, as the egress seed's S3_PATH) for the connections of a mirror.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from datamover.errors import ConfigError
from datamover.hooks.base import CheckedConnection
from datamover.s3 import S3Path, error_code, is_auth_error


class ObjectStoreHook(CheckedConnection, S3Hook):
    """`client()` is a boto3 S3 client tuned for bulk transfers; `path()` reads the extra `path`."""

    def __init__(self, aws_conn_id: str = "aws_default", endpoint_url: str | None = None, **kwargs: Any):
        """`endpoint_url` replaces the connection's endpoint (the Offload Stage YAML's `server_endpoint`,
        a deployment setting; never a trigger-form value)."""
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)
        self._endpoint_override = endpoint_url

    @cached_property
    def conn_config(self) -> AwsConnectionWrapper:
        self.require_connection()  # the provider would silently fall back to no connection at all
        wrapper = super().conn_config
        if self._endpoint_override:
            wrapper.endpoint_url = self._endpoint_override
        return wrapper

    @property
    def endpoint_url(self) -> str | None:
        return self.conn_config.get_service_endpoint_url("s3")

    def describe(self) -> str:
        return f"connection {self.conn_label!r} ({self.endpoint_url or 'AWS S3'})"

    def client(
        self, *, pool: int = 32, connect_timeout: float = 10, read_timeout: float = 60, retries: int = 5
    ) -> Any:
        """A boto3 S3 client. Bodies are not SHA-256-hashed to sign them (`payload_signing_enabled`
        off: every upload carries Content-MD5 or a CRC32 the service checks instead), and the newer
        default CRC checksums are sent only where required (Ceph RGW and older stores reject them).
        The connection's own `config_kwargs` win over these defaults, except payload signing."""
        user = self.conn_config.botocore_config
        user_s3 = dict((user.s3 if user is not None else None) or {})
        s3_options = {
            "addressing_style": "path" if self.endpoint_url else "auto",
            **user_s3,
            "payload_signing_enabled": False,
        }
        config = Config(
            max_pool_connections=pool,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if user is not None:
            config = config.merge(user)
        return self.get_client_type(config=config.merge(Config(s3=s3_options)))

    def sts_client(self) -> Any:
        """An STS client with the same credentials and endpoint (GetCallerIdentity before any data moves)."""
        return self.get_session().client(
            "sts",
            endpoint_url=self.conn_config.get_service_endpoint_url("sts"),
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=15
            ),
            verify=self.verify,
        )

    def path(self) -> S3Path:
        """The connection's `path` extra (bucket or bucket/folder)."""
        raw = self.conn_config.extra_config.get("path")
        if not raw:
            raise ConfigError(
                f"Connection {self.conn_label!r} has no 'path' in its extra: add "
                '{"path": "bucket"} or {"path": "bucket/folder"}.'
            )
        return S3Path.parse(str(raw))

    def check(self) -> str:
        """One request the keys are sure to be allowed: a 1-key listing of the connection's own path
        (the seed's keys may see only that bucket), else ListBuckets."""
        raw_path = self.conn_config.extra_config.get("path")
        try:
            client = self.client(retries=1, connect_timeout=5, read_timeout=15)
            if raw_path:
                path = S3Path.parse(str(raw_path))
                client.list_objects_v2(Bucket=path.bucket, Prefix=path.prefix, MaxKeys=1)
                return f"S3 at {self.endpoint_url or 'AWS'}: {path} readable"
            buckets = client.list_buckets()["Buckets"]
        except EndpointConnectionError:
            raise self.failure(
                f"cannot reach {self.endpoint_url or 'AWS S3'}", "check extra.endpoint_url and that it is up"
            ) from None
        except NoCredentialsError:
            raise self.failure(
                "no AWS credentials found", "set login/password or give the worker a role", permanent=True
            ) from None
        except ClientError as exc:
            code = error_code(exc) or "an error"
            if code == "NoSuchBucket":  # the keys were accepted; a mirror creates its destination bucket
                where = self.endpoint_url or "AWS"
                return f"S3 at {where}: credentials accepted; bucket of {raw_path!r} not there yet"
            raise self.failure(
                f"S3 refused the request with {code}",
                "check the access key (login), secret (password) and role_arn, and what they may access",
                permanent=is_auth_error(exc),
            ) from None
        except BotoCoreError as exc:
            raise self.failure(f"S3 request failed: {exc}", "check the connection's extra") from None
        return f"S3 at {self.endpoint_url or 'AWS'}: {len(buckets)} bucket(s) visible"
