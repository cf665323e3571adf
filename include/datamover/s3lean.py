"""A minimal S3 data-plane client: GET/PUT of whole objects and UploadPart, no Airflow, no botocore stack.

Why: botocore spends ~2.7 ms of CPU per request (event hooks, user-agent building, response parsing). For
many small objects on a small machine that client CPU competes with the services and becomes the
bottleneck. Over plain http botocore also SHA-256-hashes every request body to sign it: a second pass
over every byte of a large upload. This client does only what the copies need over a keep-alive
`urllib3` pool, signs with AWS Signature V4 itself (UNSIGNED-PAYLOAD: Content-MD5 or a CRC32 checksum
protects the body), and raises botocore's exception types so callers handle errors as for boto3.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import urllib3
from botocore.client import BaseClient
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from datamover.s3client import S3Endpoint

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"  # RGW and AWS accept it; Content-MD5 protects the body
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
META_PREFIX = "x-amz-meta-"
# boto3 parameter name -> HTTP header, for the content headers a copy carries over.
CONTENT_HEADERS: dict[str, str] = {
    "ContentType": "content-type",
    "ContentEncoding": "content-encoding",
    "ContentDisposition": "content-disposition",
    "ContentLanguage": "content-language",
    "CacheControl": "cache-control",
}
MAX_ATTEMPTS = 4
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")
_VIRTUAL_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")  # DNS-safe, no dots (TLS wildcard)


def uri_encode_path(path: str) -> str:
    """Canonical URI of an S3 path: each byte outside A-Za-z0-9-_.~ percent-encoded once, '/' kept.
    S3 (unlike other services) does not double-encode, so this is also the path sent on the wire."""
    return quote(path, safe="/-_.~")


def _canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))


class SigV4Signer:
    """AWS Signature Version 4 over a caller-chosen set of headers (all given headers are signed)."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str = "s3") -> None:
        self.access_key = access_key
        self._secret = secret_key
        self.region = region
        self.service = service
        self._key_lock = threading.Lock()
        self._key_day = ""
        self._key = b""

    def has_secret(self, secret_key: str) -> bool:
        return hmac.compare_digest(self._secret, secret_key)

    def __repr__(self) -> str:  # never show the secret
        return f"SigV4Signer(access_key={self.access_key!r}, region={self.region!r})"

    def _signing_key(self, day: str) -> bytes:
        # Derived key depends only on the day (and region/service): 4 HMACs once a day, not per request.
        with self._key_lock:
            if day != self._key_day:
                k = hmac.digest(("AWS4" + self._secret).encode(), day.encode(), "sha256")
                k = hmac.digest(k, self.region.encode(), "sha256")
                k = hmac.digest(k, self.service.encode(), "sha256")
                self._key = hmac.digest(k, b"aws4_request", "sha256")
                self._key_day = day
            return self._key

    def scope(self, day: str) -> str:
        """The credential scope of a request signed on `day` (YYYYMMDD)."""
        return f"{day}/{self.region}/{self.service}/aws4_request"

    def signature(
        self,
        method: str,
        canonical_uri: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        payload_hash: str,
        amz_date: str,
    ) -> tuple[str, str]:
        """Return (signed header list, hex signature). `headers` keys must be lower-case."""
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
        signed = ";".join(names)
        canonical_request = "\n".join(
            (method, canonical_uri, _canonical_query(query), canonical_headers, signed, payload_hash)
        )
        day = amz_date[:8]
        scope = self.scope(day)
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
        )
        sig = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return signed, sig

    def authorization(
        self,
        method: str,
        canonical_uri: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        payload_hash: str,
        amz_date: str,
    ) -> str:
        signed, sig = self.signature(method, canonical_uri, query, headers, payload_hash, amz_date)
        cred = f"{self.access_key}/{self.scope(amz_date[:8])}"
        return f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature={sig}"


@dataclass
class LeanObject:
    body: bytes
    etag: str  # as sent, quotes included (strip with listing.strip_etag)
    content_length: int
    metadata: dict[str, str] = field(default_factory=dict)
    content_headers: dict[str, str] = field(default_factory=dict)  # boto3 names: ContentType, ...


def _amz_date() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class LeanS3:
    """GET/PUT of whole objects against one endpoint; thread-safe (one urllib3 pool shared by threads)."""

    def __init__(
        self,
        endpoint: S3Endpoint,
        pool: int = 32,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        url = endpoint.endpoint_url or f"https://s3.{endpoint.region}.amazonaws.com"
        parts = urlsplit(url)
        self.endpoint_url = url
        self._scheme = parts.scheme or "https"
        self._host = parts.netloc  # host[:port] exactly as the Host header urllib3 would send
        self._base_path = parts.path.rstrip("/")
        self._path_style = endpoint.path_style
        self._region = endpoint.region
        self._credentials = _credentials(endpoint)
        self._signer_lock = threading.Lock()
        self._signer: SigV4Signer | None = None
        self._max_attempts = max(1, max_attempts)
        self._http = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool,  # one keep-alive connection per worker thread
            block=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,  # retries are ours (status-aware, with backoff)
            cert_reqs="CERT_REQUIRED" if endpoint.verify_tls else "CERT_NONE",
        )
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}

    def __repr__(self) -> str:
        return f"LeanS3({self.endpoint_url!r})"

    def _pool_for(self, host: str) -> urllib3.HTTPConnectionPool:
        # Cached per host: skips PoolManager's per-request URL parsing and pool-key building.
        pool = self._pools.get(host)
        if pool is None:
            pool = self._pools.setdefault(host, self._http.connection_from_url(f"{self._scheme}://{host}/"))
        return pool

    def _signer_for(self, access_key: str, secret_key: str) -> SigV4Signer:
        # One signer per key pair (it caches the day's signing key); a new one when the keys rotate.
        with self._signer_lock:
            signer = self._signer
            if signer is None or signer.access_key != access_key or not signer.has_secret(secret_key):
                signer = self._signer = SigV4Signer(access_key, secret_key, self._region)
            return signer

    def close(self) -> None:
        self._pools.clear()
        self._http.clear()

    # -- public API ------------------------------------------------------------------------------------
    def get_object(self, bucket: str, key: str, if_match: str | None = None) -> LeanObject:
        headers = {"if-match": if_match} if if_match else {}
        resp = self._request("GET", bucket, key, headers, b"", "GetObject")
        h = resp.headers
        metadata = {k[len(META_PREFIX) :]: v for k, v in h.items() if k.lower().startswith(META_PREFIX)}
        content = {name: h[header] for name, header in CONTENT_HEADERS.items() if h.get(header)}
        body = resp.data
        return LeanObject(
            body=body,
            etag=h.get("etag", ""),
            content_length=int(h.get("content-length", len(body))),
            metadata=metadata,
            content_headers=content,
        )

    def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_md5_b64: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_headers: Mapping[str, str] | None = None,
    ) -> str:
        """PUT the whole body; return the ETag the service answered (quotes included)."""
        headers: dict[str, str] = {}
        if content_md5_b64:
            headers["content-md5"] = content_md5_b64
        for name, value in (metadata or {}).items():
            # As botocore: metadata must be ASCII (HTTP headers are latin-1 at best, S3 wants ASCII).
            if not (name.isascii() and str(value).isascii()):
                raise ParamValidationError(
                    report=f"Non ascii characters found in S3 metadata for key {name!r}, value: {value!r}."
                )
            headers[META_PREFIX + name.lower()] = str(value)
        extra = {
            CONTENT_HEADERS[n]: v for n, v in (content_headers or {}).items() if v and n in CONTENT_HEADERS
        }
        resp = self._request("PUT", bucket, key, headers, body, "PutObject", unsigned=extra)
        return resp.headers.get("etag", "")

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: bytes,
        checksum_crc32: str | None = None,
        content_md5_b64: str | None = None,
    ) -> tuple[str, str | None]:
        """UploadPart with the integrity check the service enforces on arrival (CRC32 and/or
        Content-MD5); return (ETag, the CRC32 the service answered or None)."""
        headers: dict[str, str] = {}
        if checksum_crc32:  # both headers, as the AWS SDKs send them
            headers["x-amz-sdk-checksum-algorithm"] = "CRC32"
            headers["x-amz-checksum-crc32"] = checksum_crc32
        if content_md5_b64:
            headers["content-md5"] = content_md5_b64
        query = {"partNumber": str(part_number), "uploadId": upload_id}
        resp = self._request("PUT", bucket, key, headers, body, "UploadPart", query=query)
        return resp.headers.get("etag", ""), resp.headers.get("x-amz-checksum-crc32")

    # -- internals -------------------------------------------------------------------------------------
    def _target(self, bucket: str, key: str) -> tuple[str, str]:
        """(Host header, encoded path); the path is both the canonical URI and what goes on the wire."""
        if self._path_style or not _VIRTUAL_BUCKET_RE.match(bucket):  # as botocore's "auto" addressing
            return self._host, uri_encode_path(f"{self._base_path}/{bucket}/{key}")
        return f"{bucket}.{self._host}", uri_encode_path(f"{self._base_path}/{key}")

    def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        headers: dict[str, str],
        body: bytes,
        operation: str,
        unsigned: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        host, path = self._target(bucket, key)
        query = query or {}
        url = f"{path}?{_canonical_query(query)}" if query else path
        pool = self._pool_for(host)
        attempt = 0
        while True:
            attempt += 1
            send = self._sign(method, host, path, headers, query)
            if unsigned:
                send.update(unsigned)
            if method == "PUT":
                send["content-length"] = str(len(body))
            try:
                resp = pool.urlopen(
                    method,
                    url,
                    body=body if method == "PUT" else None,
                    headers=send,
                    retries=False,  # retries are ours (status-aware, with backoff)
                    redirect=False,
                    assert_same_host=False,
                    preload_content=True,
                    decode_content=False,  # bytes as stored: a gzip ContentEncoding must not be inflated
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt < self._max_attempts and _retryable_exc(exc):
                    _backoff(attempt)
                    continue
                raise _connection_error(exc, self.endpoint_url) from None
            status = resp.status
            if 200 <= status < 300:
                return resp
            code, message = _error_fields(resp.data, status)
            if attempt < self._max_attempts and (status in _RETRY_STATUS or code == "SlowDown"):
                _backoff(attempt)
                continue
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(resp.headers)},
                },
                operation,
            )

    def _sign(
        self, method: str, host: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> dict[str, str]:
        out = {"host": host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, **headers}
        if self._credentials is None:
            return out  # anonymous
        creds = self._credentials.get_frozen_credentials()  # refreshed by botocore when they expire
        signer = self._signer_for(creds.access_key, creds.secret_key)
        amz_date = _amz_date()
        out["x-amz-date"] = amz_date
        if creds.token:
            out["x-amz-security-token"] = creds.token
        out["authorization"] = signer.authorization(method, path, query, out, UNSIGNED_PAYLOAD, amz_date)
        return out


class BotoDataPlane:
    """LeanS3's data-plane calls made through a boto3 client, with the same arguments and answers, so
    an engine holds one data plane whether or not it was given a lean client."""

    def __init__(self, client: BaseClient) -> None:
        self.client = client

    def get_object(self, bucket: str, key: str, if_match: str | None = None) -> LeanObject:
        resp = self.client.get_object(Bucket=bucket, Key=key, **({"IfMatch": if_match} if if_match else {}))
        body = resp["Body"].read()
        return LeanObject(
            body=body,
            etag=resp.get("ETag", ""),
            content_length=int(resp.get("ContentLength", len(body))),
            metadata=resp.get("Metadata", {}),
            content_headers={name: resp[name] for name in CONTENT_HEADERS if resp.get(name)},
        )

    def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_md5_b64: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_headers: Mapping[str, str] | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {
            n: v for n, v in (content_headers or {}).items() if v and n in CONTENT_HEADERS
        }
        if content_md5_b64:
            kwargs["ContentMD5"] = content_md5_b64
        resp = self.client.put_object(
            Bucket=bucket, Key=key, Body=body, Metadata=dict(metadata or {}), **kwargs
        )
        return resp.get("ETag", "")

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: bytes,
        checksum_crc32: str | None = None,
        content_md5_b64: str | None = None,
    ) -> tuple[str, str | None]:
        kwargs: dict[str, Any] = {}
        if checksum_crc32:
            kwargs.update(ChecksumAlgorithm="CRC32", ChecksumCRC32=checksum_crc32)
        if content_md5_b64:
            kwargs["ContentMD5"] = content_md5_b64
        resp = self.client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=part_number, Body=body, **kwargs
        )
        return resp.get("ETag", ""), resp.get("ChecksumCRC32")


DataPlane = LeanS3 | BotoDataPlane


def _credentials(endpoint: S3Endpoint) -> Credentials | None:
    """The endpoint's static keys, else botocore's default chain (environment, profile, instance or
    task role, web identity: what the boto3 client of the same connection uses); None = anonymous."""
    if endpoint.access_key and endpoint.secret_key:
        return Credentials(endpoint.access_key, endpoint.secret_key, endpoint.session_token)
    return boto3.session.Session(region_name=endpoint.region).get_credentials()


def _error_fields(data: bytes, status: int) -> tuple[str, str]:
    code = _CODE_RE.search(data or b"")
    message = _MESSAGE_RE.search(data or b"")
    return (
        code.group(1).decode("utf-8", "replace") if code else str(status),
        message.group(1).decode("utf-8", "replace") if message else f"HTTP {status}",
    )


def _retryable_exc(exc: urllib3.exceptions.HTTPError) -> bool:
    # Connection refused/reset, dropped keep-alive, timeouts: all safe to retry for a whole-object GET/PUT.
    return isinstance(
        exc,
        urllib3.exceptions.ProtocolError
        | urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.TimeoutError
        | urllib3.exceptions.SSLError,
    )


def _connection_error(exc: urllib3.exceptions.HTTPError, endpoint_url: str) -> Exception:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return ReadTimeoutError(endpoint_url=endpoint_url, error=exc)
    return EndpointConnectionError(endpoint_url=endpoint_url, error=exc)


def _backoff(attempt: int) -> None:
    # Exponential with full jitter, as botocore's standard mode: 0..(50 ms * 2^attempt), capped at 2 s.
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
