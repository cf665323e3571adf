"""Object-store pieces of archival (a boto3 S3 client; S3 or Ceph RGW): a streaming multipart writer,
server-side copy of any size, and cleanup of unfinished uploads."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from datamover.s3 import MAX_PARTS, head_or_none, is_not_found, multipart_etag, strip_etag
from datamover.units import MIB

COPY_OBJECT_LIMIT = 5 * 1024 * MIB  # CopyObject's maximum source size; larger objects copy in parts
COPY_PART_SIZE = 512 * MIB


@dataclass(frozen=True)
class Written:
    bucket: str
    key: str
    size: int
    etag: str  # as the store reports it (MD5, or MD5-of-part-MD5s + "-N"), verified against ours

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "size": self.size, "etag": self.etag}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Written:
        return cls(d["bucket"], d["key"], int(d["size"]), d["etag"])


class MultipartWriter:
    """A file-like sink that uploads an object as it is written: parts of `part_size` go up on
    `workers` threads (at most `workers` parts in flight, so memory stays near
    (workers + 1) x part_size), each with its Content-MD5. An object smaller than one part is a single
    PutObject. `close()` finishes it and returns what was written; `abort()` drops it."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        part_size: int = 8 * MIB,
        workers: int = 4,
        content_type: str = "application/octet-stream",
        pool: ThreadPoolExecutor | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.content_type = content_type
        self.on_progress = on_progress
        self._buf = bytearray()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[Future[tuple[int, str, bytes]]] = []
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(workers, thread_name_prefix="logdog-part")
        self._slots = threading.BoundedSemaphore(workers)
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        self._buf += data
        self._size += len(data)
        if len(self._buf) >= self.part_size:
            size = self.part_size
            whole = len(self._buf) // size * size
            with memoryview(self._buf) as view:  # one copy per part, none of the whole buffer
                for start in range(0, whole, size):
                    self._submit(bytes(view[start : start + size]))
            del self._buf[:whole]
        return len(data)

    def _submit(self, chunk: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type
            )["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"{self.key}: more than {MAX_PARTS} parts; raise part_size_mib")
        for done in [f for f in self._parts if f.done()]:
            done.result()  # surface a failed part early
        self._slots.acquire()
        try:
            self._parts.append(self._pool.submit(self._upload_part, number, chunk))
        except BaseException:
            self._slots.release()
            raise

    def _upload_part(self, number: int, chunk: bytes) -> tuple[int, str, bytes]:
        try:
            digest = hashlib.md5(chunk).digest()
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=chunk,
                ContentMD5=base64.b64encode(digest).decode(),
            )
            if self.on_progress is not None:
                self.on_progress(len(chunk))
            return number, strip_etag(response["ETag"]), digest
        finally:
            self._slots.release()

    def close(self) -> Written:
        if self._closed:
            raise ValueError("already closed")
        self._closed = True
        try:
            if self._upload_id is None:
                body = bytes(self._buf)
                digest = hashlib.md5(body).digest()
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=body,
                    ContentType=self.content_type,
                    ContentMD5=base64.b64encode(digest).decode(),
                )
                etag = strip_etag(response["ETag"])
                if etag != digest.hex():
                    raise OSError(f"{self.key}: the store answered ETag {etag}, expected {digest.hex()}")
                return Written(self.bucket, self.key, self._size, etag)
            if self._buf or not self._parts:
                self._submit(bytes(self._buf))
                self._buf.clear()
            parts = [f.result() for f in self._parts]
            response = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in parts]},
            )
            etag = strip_etag(response.get("ETag"))
            expected = multipart_etag([d for _, _, d in parts])
            if etag and etag != expected:
                raise OSError(f"{self.key}: the store answered ETag {etag}, expected {expected}")
            return Written(self.bucket, self.key, self._size, expected)
        except BaseException:
            self.abort()
            raise
        finally:
            if self._own_pool:
                self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._closed = True
        for f in self._parts:
            f.cancel()
        if self._upload_id is not None:
            for f in self._parts:
                if not f.cancelled():
                    f.exception()  # wait for it: an in-flight part would otherwise outlive the abort
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except Exception as exc:  # the store drops it later (lifecycle) or the next run does
                if not is_not_found(exc):
                    raise
            self._upload_id = None
        if self._own_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)


def abort_uploads(client: Any, bucket: str, prefix: str) -> int:
    """Abort every unfinished multipart upload under `prefix` (a crashed run's); returns how many."""
    aborted = 0
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = client.list_multipart_uploads(**kwargs)
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
        if not page.get("IsTruncated"):
            return aborted
        kwargs["KeyMarker"] = page.get("NextKeyMarker")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker")


def matches(client: Any, written: Written, metadata_etag: bool = False) -> bool:
    """Is `written` there, the same size and ETag? With `metadata_etag`, the ETag is the one recorded in
    the object's metadata `staged-etag` (a server-side copy gets an ETag of its own)."""
    head = head_or_none(client, written.bucket, written.key)
    if head is None or int(head["ContentLength"]) != written.size:
        return False
    if metadata_etag:
        return head.get("Metadata", {}).get("staged-etag") == written.etag
    return strip_etag(head.get("ETag")) == written.etag


def copy_object(
    client: Any,
    source: Written,
    bucket: str,
    key: str,
    metadata: dict[str, str],
    content_type: str,
    pool: ThreadPoolExecutor | None = None,
    part_size: int = COPY_PART_SIZE,
    limit: int = COPY_OBJECT_LIMIT,
) -> None:
    """Server-side copy (no bytes through this process) with new metadata; objects above `limit` are
    copied in parts (UploadPartCopy). The copy appears whole or not at all."""
    src = {"Bucket": source.bucket, "Key": source.key}
    if source.size <= limit:
        client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource=src,
            MetadataDirective="REPLACE",
            Metadata=metadata,
            ContentType=content_type,
        )
        return
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=metadata, ContentType=content_type
    )["UploadId"]

    def part(number: int, start: int) -> dict[str, Any]:
        end = min(start + part_size, source.size) - 1
        response = client.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=src,
            CopySourceRange=f"bytes={start}-{end}",
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    own = pool is None
    executor = pool or ThreadPoolExecutor(4, thread_name_prefix="logdog-copy")
    try:
        futures = [
            executor.submit(part, i + 1, start) for i, start in enumerate(range(0, source.size, part_size))
        ]
        parts = [f.result() for f in futures]
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        if own:
            executor.shutdown(wait=True)


def delete_quietly(client: Any, bucket: str, key: str) -> None:
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if not is_not_found(exc):
            raise
