"""S3 bucket and object helpers shared by every engine (no Airflow): paths, error codes, bucket
creation, multipart part arithmetic and ETags. Clients come from `datamover.hooks.s3.ObjectStoreHook`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from datamover.errors import ConfigError
from datamover.units import MIB

MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
AUTH_ERROR_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
        "403",
    }
)
# boto3 parameter names of the content headers an object carries (and a copy must carry over).
CONTENT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")


@dataclass(frozen=True)
class S3Path:
    """A bucket plus an optional key prefix, written `bucket` or `bucket/folder/sub` as the egress
    seed's S3_PATH (an `s3://` prefix is accepted)."""

    bucket: str
    prefix: str = ""  # no leading or trailing slash

    @classmethod
    def parse(cls, text: str) -> S3Path:
        raw = text.strip().removeprefix("s3://")
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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (error_code(exc) in NOT_FOUND_CODES or http_status(exc) == 404)


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (error_code(exc) in AUTH_ERROR_CODES or http_status(exc) == 403)


def create_bucket(client: Any, bucket: str) -> bool:
    """Create `bucket` in the client's region; True if created, False if it was there already (ours)."""
    region = client.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        if error_code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False  # a concurrent run created it, or it exists: fine
        raise
    return True


def head_or_none(client: Any, bucket: str, key: str, **kwargs: Any) -> dict[str, Any] | None:
    """HeadObject, or None when the object does not exist."""
    try:
        return client.head_object(Bucket=bucket, Key=key, **kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def content_headers(response: dict[str, Any]) -> dict[str, str]:
    """The content headers of a HeadObject/GetObject answer, as PutObject parameters."""
    return {name: response[name] for name in CONTENT_HEADERS if response.get(name)}


def part_size_for(size: int, minimum: int = 8 * MIB) -> int:
    """`minimum`, grown in whole MiB so no object needs more than 10 000 parts. Deterministic, so an
    interrupted multipart upload lines up with the same bytes on the next run."""
    needed = -(-size // MAX_PARTS)
    return max(minimum, math.ceil(needed / MIB) * MIB)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """[(part number, offset, length)] covering `size` bytes."""
    return [(i + 1, off, min(part_size, size - off)) for i, off in enumerate(range(0, size, part_size))]


def multipart_etag(md5_digests: Sequence[bytes]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' MD5s, then `-<parts>`."""
    return f"{hashlib.md5(b''.join(md5_digests)).hexdigest()}-{len(md5_digests)}"
