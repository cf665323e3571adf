"""s3lean against the real Ceph RGW (SigV4 enforced): round trips, awkward keys, error mapping."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from datamover.s3client import S3Endpoint
from datamover.s3lean import BotoDataPlane, LeanS3
from tests.conftest import AWKWARD_KEYS, ceph_endpoint

pytestmark = pytest.mark.integration

BUCKET = "s3lean-test"
AWKWARD = [*AWKWARD_KEYS, "tilde~/semi;colon=eq&amp,comma'quote(paren)!star*"]


def _md5(body: bytes) -> tuple[str, str]:
    d = hashlib.md5(body).digest()
    return d.hex(), base64.b64encode(d).decode()


@pytest.fixture
def prefix() -> Iterator[str]:
    client = ceph_endpoint().client()
    try:
        client.create_bucket(Bucket=BUCKET)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    run = f"run-{uuid.uuid4().hex[:8]}/"
    yield run
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=run):
        for obj in page.get("Contents", ()):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])


@pytest.mark.parametrize("name", AWKWARD)
def test_round_trip_awkward_keys(prefix: str, name: str) -> None:
    lean = LeanS3(ceph_endpoint(), 4)
    key = prefix + name
    body = b"" if name == "empty" else os.urandom(1000) + name.encode()
    hexmd5, b64 = _md5(body)
    meta = {"datamover-source-etag": hexmd5, "Owner": "team a  b", "x": "1"}
    content = {"ContentType": "text/csv; charset=utf-8", "CacheControl": "max-age=60"}
    content["ContentLanguage"] = "de"
    etag = lean.put_object(BUCKET, key, body, b64, meta, content)
    assert etag.strip('"') == hexmd5

    got = lean.get_object(BUCKET, key, if_match=etag)
    assert got.body == body
    assert got.content_length == len(body)
    assert got.etag.strip('"') == hexmd5
    assert got.metadata == {"datamover-source-etag": hexmd5, "owner": "team a  b", "x": "1"}
    assert got.content_headers["ContentType"] == "text/csv; charset=utf-8"
    assert got.content_headers["CacheControl"] == "max-age=60"
    assert got.content_headers["ContentLanguage"] == "de"

    # boto3 sees the same object under the same key (no double encoding).
    head = ceph_endpoint().client().head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["Metadata"]["owner"] == "team a  b"


def test_wrong_md5_is_rejected(prefix: str) -> None:
    lean = LeanS3(ceph_endpoint(), 2)
    with pytest.raises(ClientError) as err:
        lean.put_object(BUCKET, prefix + "bad-md5", b"abc", _md5(b"abd")[1], {}, {})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "BadDigest"


def test_wrong_secret_is_403(prefix: str) -> None:
    lean = LeanS3(ceph_endpoint(secret="wrong-secret"), 2)
    with pytest.raises(ClientError) as err:
        lean.put_object(BUCKET, prefix + "x", b"abc", _md5(b"abc")[1], {}, {})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    assert err.value.operation_name == "PutObject"
    with pytest.raises(ClientError) as err:
        lean.get_object(BUCKET, prefix + "x")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_keys_from_the_default_chain_when_the_connection_has_none(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection without keys (an instance or task role on MWAA) signs with botocore's chain, as the
    boto3 client of the same connection does; Ceph checks the signature."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["DATAMOVER_CEPH_ACCESS_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["DATAMOVER_CEPH_SECRET_KEY"])
    lean = LeanS3(S3Endpoint(os.environ["DATAMOVER_CEPH_ENDPOINT"]), 2)
    etag = lean.put_object(BUCKET, prefix + "chain", b"role", _md5(b"role")[1], {}, {})
    assert lean.get_object(BUCKET, prefix + "chain", if_match=etag).body == b"role"


def test_missing_object_is_404(prefix: str) -> None:
    with pytest.raises(ClientError) as err:
        LeanS3(ceph_endpoint(), 2).get_object(BUCKET, prefix + "no/such key")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    assert err.value.operation_name == "GetObject"


def test_if_match_mismatch_is_412(prefix: str) -> None:
    lean = LeanS3(ceph_endpoint(), 2)
    lean.put_object(BUCKET, prefix + "v", b"v1", _md5(b"v1")[1], {}, {})
    with pytest.raises(ClientError) as err:
        lean.get_object(BUCKET, prefix + "v", if_match=f'"{_md5(b"other")[0]}"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_unreachable_endpoint_is_connection_error() -> None:
    ep = S3Endpoint("http://127.0.0.1:9", access_key="a", secret_key="b")
    with pytest.raises(EndpointConnectionError):
        LeanS3(ep, 2, connect_timeout=1, max_attempts=2).get_object("b", "k")


@pytest.mark.parametrize("name", ["multi/part key+with spaces ü%.bin", "plain.bin"])
def test_upload_part_signs_the_query_and_completes(prefix: str, name: str) -> None:
    """UploadPart (SigV4 over partNumber/uploadId) on Ceph, which enforces signatures and Content-MD5."""
    client = ceph_endpoint().client()
    lean = LeanS3(ceph_endpoint(), 2)
    key = prefix + name
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = [os.urandom(5 * 1024 * 1024), b"tail"]
    etags = []
    for number, body in enumerate(parts, start=1):
        hexmd5, b64 = _md5(body)
        etag, _crc = lean.upload_part(BUCKET, key, upload_id, number, body, content_md5_b64=b64)
        assert etag.strip('"') == hexmd5
        etags.append(etag)
    with pytest.raises(ClientError) as err:
        lean.upload_part(BUCKET, key, upload_id, 3, b"abc", content_md5_b64=_md5(b"abd")[1])
    assert err.value.response["Error"]["Code"] == "BadDigest"
    assert err.value.operation_name == "UploadPart"
    client.complete_multipart_upload(
        Bucket=BUCKET,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]},
    )
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"".join(parts)


def test_boto_data_plane_answers_as_the_lean_client(prefix: str) -> None:
    """The boto3 fallback engines use without a lean client: same calls, same answers, on Ceph."""
    lean, boto = LeanS3(ceph_endpoint(), 2), BotoDataPlane(ceph_endpoint().client())
    body = os.urandom(3000)
    hexmd5, b64 = _md5(body)
    meta, content = {"sha256": "abc"}, {"ContentType": "text/csv", "CacheControl": "no-cache"}
    assert boto.put_object(BUCKET, prefix + "b", body, b64, meta, content).strip('"') == hexmd5
    assert lean.put_object(BUCKET, prefix + "l", body, b64, meta, content).strip('"') == hexmd5
    got_b, got_l = boto.get_object(BUCKET, prefix + "l"), lean.get_object(BUCKET, prefix + "b")
    for got in (got_b, got_l):
        assert (got.body, got.etag.strip('"'), got.content_length) == (body, hexmd5, len(body))
        assert got.metadata == meta and got.content_headers == content
    with pytest.raises(ClientError) as err:
        boto.get_object(BUCKET, prefix + "b", if_match=f'"{_md5(b"other")[0]}"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412

    client = ceph_endpoint().client()
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=prefix + "mp")["UploadId"]
    etag, crc = boto.upload_part(BUCKET, prefix + "mp", upload_id, 1, body, content_md5_b64=b64)
    assert etag.strip('"') == hexmd5 and crc is None  # Ceph 16 keeps no CRC32
    with pytest.raises(ClientError) as err:
        boto.upload_part(BUCKET, prefix + "mp", upload_id, 2, b"abc", content_md5_b64=_md5(b"abd")[1])
    assert err.value.response["Error"]["Code"] == "BadDigest"
    client.abort_multipart_upload(Bucket=BUCKET, Key=prefix + "mp", UploadId=upload_id)
