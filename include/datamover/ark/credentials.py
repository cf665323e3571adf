"""The Offload Stage's first step: prove the AWS credentials work before touching any data."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from datamover.errors import ConfigError, ConnectionCheckError, CredentialsError
from datamover.hooks.s3 import ObjectStoreHook
from datamover.s3 import create_bucket, error_code, is_auth_error

_FIX = (
    "set the access key id (login) and secret key (password) of Airflow connection {conn!r} "
    "(Admin > Connections), or refresh them with ark-auth-tool and update the connection"
)


def check_credentials(hook: ObjectStoreHook, bucket: str, create: bool = False) -> str:
    """STS GetCallerIdentity, then HeadBucket on `bucket` (created only when `create`). Raise
    CredentialsError (no retry can help) or ConnectionCheckError (unreachable: retried) naming the
    connection and the fix; return who we are."""
    conn = hook.conn_label
    fix = _FIX.format(conn=conn)
    where = hook.endpoint_url or "AWS"
    try:
        identity = hook.sts_client().get_caller_identity()
    except NoCredentialsError:
        raise CredentialsError(f"Connection {conn!r}: no AWS credentials found. Fix: {fix}.") from None
    except EndpointConnectionError:
        raise ConnectionCheckError(
            f"Connection {conn!r}: cannot reach {where}. Fix: check the connection's endpoint_url or the "
            "config's server_endpoint, and that the service is up."
        ) from None
    except ClientError as exc:
        raise CredentialsError(
            f"Connection {conn!r}: credentials refused by STS GetCallerIdentity "
            f"({error_code(exc) or 'error'}: missing, expired or invalid). Fix: {fix}."
        ) from None
    except BotoCoreError as exc:
        raise ConnectionCheckError(f"Connection {conn!r}: STS request failed ({exc}). Fix: {fix}.") from None
    arn = identity.get("Arn")
    s3 = hook.client(retries=2, connect_timeout=5, read_timeout=15)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc) or "error"
        if code in ("404", "NoSuchBucket", "NotFound"):
            if create:
                create_bucket(s3, bucket)
                return f"{arn} via {conn!r}; created bucket {bucket!r} at {where}"
            raise ConfigError(
                f"Destination bucket {bucket!r} does not exist at {where} (connection {conn!r}). Fix: create "
                "it, or correct destination_bucket (create_bucket: true in the config for local setups)."
            ) from None
        error = CredentialsError if is_auth_error(exc) else ConnectionCheckError
        raise error(
            f"Connection {conn!r} ({arn}) has no access to bucket {bucket!r} (HeadBucket {code}). "
            f"Fix: grant s3:ListBucket/PutObject on it to these credentials, or {fix}."
        ) from None
    except BotoCoreError as exc:
        raise ConnectionCheckError(f"Connection {conn!r}: HeadBucket {bucket!r} failed ({exc}).") from None
    return f"{arn} via {conn!r} can reach bucket {bucket!r} at {where}"
