"""The Offload Stage's first step: prove the AWS credentials work before touching any data."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from datamover.errors import ConnectionCheckError
from datamover.s3client import S3Endpoint

_FIX = (
    "set the access key id (login) and secret key (password) of Airflow connection {conn!r} "
    "(Admin > Connections), or refresh them with ark-auth-tool and update the connection"
)


def check_credentials(endpoint: S3Endpoint, bucket: str, create_bucket: bool = False) -> str:
    """STS GetCallerIdentity, then HeadBucket on `bucket` (created only when `create_bucket`).
    Raise ConnectionCheckError naming the connection and the fix; return who we are."""
    conn = endpoint.label
    fix = _FIX.format(conn=conn)
    where = endpoint.endpoint_url or "AWS"
    try:
        sts = endpoint.client("sts", retries=2, connect_timeout=5, read_timeout=15)
        identity = sts.get_caller_identity()
    except NoCredentialsError:
        raise ConnectionCheckError(f"Connection {conn!r}: no AWS credentials found. Fix: {fix}.") from None
    except EndpointConnectionError:
        raise ConnectionCheckError(
            f"Connection {conn!r}: cannot reach {where}. Fix: check the connection's "
            "endpoint_url or the config's server_endpoint, and that the service is up."
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConnectionCheckError(
            f"Connection {conn!r}: credentials refused by STS GetCallerIdentity ({code}: "
            "missing, expired or invalid). Fix: " + fix + "."
        ) from None
    except BotoCoreError as exc:
        raise ConnectionCheckError(f"Connection {conn!r}: STS request failed ({exc}). Fix: {fix}.") from None
    s3 = endpoint.client(retries=2, connect_timeout=5, read_timeout=15)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "error"))
        if code in ("404", "NoSuchBucket", "NotFound") and create_bucket:
            s3.create_bucket(Bucket=bucket)
            return f"{identity.get('Arn')} via {conn!r}; created bucket {bucket!r} at {where}"
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise ConnectionCheckError(
                f"Destination bucket {bucket!r} does not exist at {where} (connection {conn!r}). "
                "Fix: create it, "
                "correct destination_bucket, or (local testing only) run with the param create_bucket=true."
            ) from None
        raise ConnectionCheckError(
            f"Connection {conn!r} ({identity.get('Arn')}) has no access to bucket {bucket!r} "
            f"(HeadBucket {code}). "
            f"Fix: grant s3:ListBucket/PutObject on it to these credentials, or {fix}."
        ) from None
    except BotoCoreError as exc:
        raise ConnectionCheckError(f"Connection {conn!r}: HeadBucket {bucket!r} failed ({exc}).") from None
    return f"{identity.get('Arn')} via {conn!r} can reach bucket {bucket!r} at {where}"
