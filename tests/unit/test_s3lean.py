"""s3lean's SigV4 signer and URI encoding, checked against AWS's published example."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamover.s3client import S3Endpoint
from datamover.s3lean import EMPTY_SHA256, LeanS3, SigV4Signer, uri_encode_path

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_signer_reproduces_aws_get_object_example() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object"
    signer = SigV4Signer(AWS_KEY, AWS_SECRET, "us-east-1")
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    signed, sig = signer.signature("GET", "/test.txt", {}, headers, EMPTY_SHA256, "20130524T000000Z")
    assert signed == "host;range;x-amz-content-sha256;x-amz-date"
    assert sig == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    auth = signer.authorization("GET", "/test.txt", {}, headers, EMPTY_SHA256, "20130524T000000Z")
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    # The cached signing key gives the same answer the second time.
    assert signer.signature("GET", "/test.txt", {}, headers, EMPTY_SHA256, "20130524T000000Z")[1] == sig


def test_signer_does_not_show_secret() -> None:
    assert AWS_SECRET not in repr(SigV4Signer(AWS_KEY, AWS_SECRET, "us-east-1"))
    ep = S3Endpoint("http://127.0.0.1:1", access_key=AWS_KEY, secret_key=AWS_SECRET)
    assert AWS_SECRET not in repr(LeanS3(ep, 2))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/b/with space/a file.csv", "/b/with%20space/a%20file.csv"),
        ("/b/ünï/日本.txt", "/b/%C3%BCn%C3%AF/%E6%97%A5%E6%9C%AC.txt"),
        ("/b/plus+sign/100%/a%20b+c.txt", "/b/plus%2Bsign/100%25/a%2520b%2Bc.txt"),
        ("/b/tilde~/A-Z_a.z-0~9", "/b/tilde~/A-Z_a.z-0~9"),
        ("/b/q?x=1&y=#frag", "/b/q%3Fx%3D1%26y%3D%23frag"),
        ("/b//double//slash/", "/b//double//slash/"),
    ],
)
def test_canonical_uri_encodes_each_segment_once(path: str, expected: str) -> None:
    assert uri_encode_path(path) == expected


def test_path_style_target_and_anonymous(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # no keys in the connection and none in botocore's default chain: requests go unsigned
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lean = LeanS3(S3Endpoint("http://rgw.local:7480", access_key=None, secret_key=None), 2)
    assert lean._target("bkt", "a b/c+d") == ("rgw.local:7480", "/bkt/a%20b/c%2Bd")
    headers = lean._sign("GET", "rgw.local:7480", "/bkt/k", {}, {})
    assert "authorization" not in headers


def test_virtual_host_only_when_asked_and_dns_safe() -> None:
    ep = S3Endpoint(None, region="eu-west-1", access_key=AWS_KEY, secret_key=AWS_SECRET, path_style=False)
    lean = LeanS3(ep, 2)
    assert lean._target("my-bucket", "k") == ("my-bucket.s3.eu-west-1.amazonaws.com", "/k")
    assert lean._target("my.dotted.bucket", "k") == ("s3.eu-west-1.amazonaws.com", "/my.dotted.bucket/k")
