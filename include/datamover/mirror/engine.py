"""The transfer engine: one shard of a mirror, streamed between two S3 services.

Shape (after s3transfer): two bounded thread pools, one across objects and one across parts of large
objects, sharing a byte budget so at most `max_buffer_bytes` of object data is in memory at once.
Small objects are one GET + one PUT whose Content-MD5 is the source's own ETag (an end-to-end check
with no hashing here); large ones are one streamed GET cut into UploadParts, using the source's own
part layout when the source is multipart (so the ETags match, see plan.py). Clients are boto3 with
payload signing off: Content-MD5 protects every body, so neither side SHA-256-hashes it over http.
Every GET carries If-Match with the listed ETag, so an object changed mid-copy is never stitched
together from two versions. Content headers and user metadata come from the object itself (its GET),
never from a part HEAD. A copy counts only after the destination confirmed size and MD5/ETag (and,
for multipart copies, the headers and metadata).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from datamover.errors import ConfigError, ConnectionCheckError, CredentialsError, SourceError, TransferError
from datamover.mirror.listing import (
    KeyRange,
    ObjectInfo,
    base_prefix,
    flatten,
    list_pages,
    prefetch,
    scope_prefix,
)
from datamover.mirror.plan import (
    MIB,
    SOURCE_ETAG_META,
    Action,
    Kind,
    choose_part_size,
    diff,
    guess_part_size,
    is_multipart_etag,
    multipart_count,
)
from datamover.s3 import (
    S3Path,
    content_headers,
    create_bucket,
    error_code,
    head_or_none,
    http_status,
    is_auth_error,
    part_ranges,
    strip_etag,
)

log = logging.getLogger("datamover.mirror")

MAX_LISTED_FAILURES = 50


class MirrorAuthError(CredentialsError):
    """The service refused the keys: retrying cannot help, fail at once."""


class SourceVanished(SourceError):
    """The source object was deleted after it was listed."""


class SourceChanged(SourceError):
    """The source object was overwritten after it was listed (If-Match failed)."""


@dataclass
class Side:
    """One end of the mirror: a client, the path (bucket[/prefix]), the connection id, the log alias."""

    client: BaseClient
    path: S3Path
    label: str
    alias: str

    def key(self, rel: str) -> str:
        return base_prefix(self.path) + rel

    def show(self, rel: str) -> str:
        return f"`{self.alias}/{self.path.bucket}/{self.key(rel)}`"


@dataclass
class MirrorOptions:
    scope: str = ""  # sub-folder below both paths (e.g. the logical date), '' = whole tree
    key_range: KeyRange = field(default_factory=KeyRange)
    remove_extraneous: bool = False
    max_delete: int = 1000  # safety cap: more deletions than this and none is done
    object_workers: int = 32  # small objects are latency-bound: more in flight
    part_workers: int = 16
    multipart_threshold: int = 16 * MIB
    part_size: int = 8 * MIB
    max_part_size: int = 64 * MIB  # larger source parts are not mirrored part for part (memory)
    max_buffer_bytes: int = 256 * MIB
    verify_source_md5: bool = True  # a single-part source ETag is the MD5 the destination must find
    abort_stale_uploads: bool = True


@dataclass
class MirrorResult:
    copied: int = 0
    skipped: int = 0
    removed: int = 0
    failed: int = 0
    vanished: int = 0  # deleted or changed at the source during the run: reported, not fatal
    source_objects: int = 0
    source_bytes: int = 0
    total_bytes: int = 0  # what needed copying (mc's "Total")
    transferred_bytes: int = 0
    aborted_uploads: int = 0
    updated: int = 0  # identical bytes, headers/metadata rewritten in place
    started: float = 0.0
    finished: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-6)

    def summary_line(self) -> str:
        return summary_line(self.total_bytes, self.transferred_bytes, self.seconds)

    def counts_line(self) -> str:
        return (
            f"Copied: {self.copied}, Updated: {self.updated}, Skipped: {self.skipped}, "
            f"Removed: {self.removed}, Failed: {self.failed}, Vanished: {self.vanished}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MirrorResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def combine(cls, parts: list[MirrorResult]) -> MirrorResult:
        out = cls()
        for p in parts:
            for name in (
                "copied",
                "skipped",
                "removed",
                "failed",
                "vanished",
                "source_objects",
                "source_bytes",
                "total_bytes",
                "transferred_bytes",
                "aborted_uploads",
                "updated",
            ):
                setattr(out, name, getattr(out, name) + getattr(p, name))
            out.failures.extend(p.failures)
        out.failures = out.failures[:MAX_LISTED_FAILURES]
        if parts:
            out.started = min(p.started for p in parts)
            out.finished = max(p.finished for p in parts)
        return out


def summary_line(total: int, transferred: int, seconds: float) -> str:
    """The seed's summary, as `mc mirror` prints it."""
    return (
        f"Total: {total / MIB:.2f} MiB, Transferred: {transferred / MIB:.2f} MiB, "
        f"Speed: {transferred / MIB / max(seconds, 1e-6):.2f} MiB/s"
    )


def explain(exc: BaseException, side: Side, doing: str) -> Exception:
    """Turn a boto error into one of ours that names the connection and the fix."""
    where = f"Connection {side.label!r} ({side.path})"
    if isinstance(exc, EndpointConnectionError):
        return ConnectionCheckError(
            f"{where}: cannot reach the endpoint while {doing}. Fix: check "
            "extra.endpoint_url and that the service is up."
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if is_auth_error(exc):
            return MirrorAuthError(
                f"{where}: the service refused the credentials ({code or '403'}) while "
                f"{doing}. Fix: check the access key (login) and secret (password), and "
                "that they may read/write this bucket."
            )
        if code == "NoSuchBucket":
            return ConfigError(
                f"{where}: bucket {side.path.bucket!r} does not exist. Fix: create it or correct extra.path."
            )
        return SourceError(f"{where}: {code or 'error'} while {doing}: {exc}")
    if isinstance(exc, BotoCoreError):
        return ConnectionCheckError(f"{where}: request failed while {doing}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def check_side(side: Side, create_missing: bool = False) -> str:
    """One cheap request on the side's own bucket (the seed's keys may only see that bucket).
    With create_missing, a missing bucket is created (the destination's setup)."""
    try:
        side.client.list_objects_v2(Bucket=side.path.bucket, Prefix=base_prefix(side.path), MaxKeys=1)
        return f"{side.label}: {side.path} readable"
    except (ClientError, BotoCoreError) as exc:
        err = explain(exc, side, "listing the path")
        if not (create_missing and isinstance(err, ConfigError)):
            raise err from None
    try:
        create_bucket(side.client, side.path.bucket)
    except ClientError as exc:
        raise explain(exc, side, "creating the bucket") from None
    log.info("Created bucket %r on %s", side.path.bucket, side.label)
    return f"{side.label}: created bucket {side.path.bucket}"


def abort_stale_uploads(dest: Side, scope: str, key_range: KeyRange) -> int:
    """Abort unfinished multipart uploads left in our scope/range by a killed earlier run."""
    base = base_prefix(dest.path)
    kwargs: dict[str, Any] = {"Bucket": dest.path.bucket, "Prefix": scope_prefix(dest.path, scope)}
    aborted = 0
    while True:
        resp = dest.client.list_multipart_uploads(**kwargs)
        for up in resp.get("Uploads", ()):
            rel = up["Key"][len(base) :]
            if key_range.contains(rel):
                dest.client.abort_multipart_upload(
                    Bucket=dest.path.bucket, Key=up["Key"], UploadId=up["UploadId"]
                )
                aborted += 1
        if not resp.get("IsTruncated"):
            return aborted
        kwargs["KeyMarker"] = resp.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker", "")


class ByteBudget:
    """A counting semaphore in bytes: bounds the object data held in memory across all threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int) -> int:
        n = min(max(nbytes, 1), self.limit)
        with self._cond:
            while self.used + n > self.limit:
                self._cond.wait()
            self.used += n
        return n

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        n = self.acquire(nbytes)
        try:
            yield
        finally:
            self.release(n)


_PLAIN_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class Mirror:
    """Mirror source -> dest for one scope and key range. `run()` returns a MirrorResult; per-object
    failures are collected (the run goes on), listing/auth/connection failures raise."""

    def __init__(
        self,
        source: Side,
        dest: Side,
        options: MirrorOptions | None = None,
        on_progress: Callable[[MirrorResult], None] | None = None,
    ) -> None:
        self.source = source
        self.dest = dest
        self.opt = options or MirrorOptions()
        self.result = MirrorResult()
        self._lock = threading.Lock()
        self._budget = ByteBudget(self.opt.max_buffer_bytes)
        self._parts: ThreadPoolExecutor | None = None
        self._on_progress = on_progress

    # -- bookkeeping -------------------------------------------------------------------------------
    def _add(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self.result, name, getattr(self.result, name) + value)

    def _fail(self, rel: str, message: str) -> None:
        log.error("Failed %s: %s", self.source.show(rel), message)
        with self._lock:
            self.result.failed += 1
            if len(self.result.failures) < MAX_LISTED_FAILURES:
                self.result.failures.append(f"{self.source.key(rel)}: {message}")

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> MirrorResult:
        opt = self.opt
        self.result.started = time.time()
        try:
            if opt.abort_stale_uploads:
                try:
                    self.result.aborted_uploads = abort_stale_uploads(self.dest, opt.scope, opt.key_range)
                except (ClientError, BotoCoreError) as exc:
                    raise explain(exc, self.dest, "listing unfinished multipart uploads") from None
                if self.result.aborted_uploads:
                    log.info(
                        "Aborted %d unfinished multipart upload(s) of an earlier run",
                        self.result.aborted_uploads,
                    )
            deletes = self._transfer()
            self._delete(deletes)
        finally:
            self.result.finished = time.time()
        return self.result

    def _listing(self, side: Side) -> Iterator[ObjectInfo]:
        try:
            yield from flatten(
                prefetch(list_pages(side.client, side.path, self.opt.scope, self.opt.key_range, side.label))
            )
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc, side, "listing") from None

    def _transfer(self) -> list[ObjectInfo]:
        opt = self.opt
        deletes: list[ObjectInfo] = []
        over_cap = False
        slots = threading.BoundedSemaphore(opt.object_workers * 2)  # bounds queued actions, not just threads
        # The part pool is entered first so it shuts down last: object tasks still submit parts to it.
        with (
            ThreadPoolExecutor(opt.part_workers, thread_name_prefix="mirror-part") as parts,
            ThreadPoolExecutor(opt.object_workers, thread_name_prefix="mirror-obj") as objects,
        ):
            self._parts = parts
            for action in diff(self._listing(self.source), self._listing(self.dest), opt.remove_extraneous):
                if action.source is not None:
                    self.result.source_objects += 1
                    self.result.source_bytes += action.source.size
                if action.kind is Kind.SKIP:
                    self._add(skipped=1)
                elif action.kind is Kind.DELETE:
                    if len(deletes) < opt.max_delete:
                        deletes.append(action.dest)  # type: ignore[arg-type]
                    else:
                        over_cap = True
                else:
                    slots.acquire()
                    fut: Future[None] = objects.submit(self._do, action)
                    fut.add_done_callback(lambda _f: slots.release())
        # The source listing was read to its end without error: only now may deletions happen.
        if over_cap:
            return self._refuse_removal(
                f"more than max_delete={opt.max_delete} destination objects are not at the source; "
                "removed none. Fix: check the source path, or raise max_delete"
            )
        if deletes and self.result.source_objects == 0:
            return self._refuse_removal(
                f"the source listing is empty, so all {len(deletes)} destination objects would be removed; "
                "removed none. Fix: check the source path and scope"
            )
        return deletes

    def _refuse_removal(self, message: str) -> list[ObjectInfo]:
        """Count a refused removal as a failure of the run and remove nothing."""
        log.error("Refusing to remove: %s", message)
        with self._lock:
            self.result.failed += 1
            self.result.failures.append(message)
        return []

    def _delete(self, objects: list[ObjectInfo]) -> None:
        for i in range(0, len(objects), 1000):
            batch = objects[i : i + 1000]
            try:
                resp = self.dest.client.delete_objects(
                    Bucket=self.dest.path.bucket,
                    Delete={"Objects": [{"Key": self.dest.key(o.key)} for o in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise explain(exc, self.dest, "removing extraneous objects") from None
            errors = {e["Key"]: e.get("Message") or e.get("Code") for e in resp.get("Errors", ())}
            for o in batch:
                key = self.dest.key(o.key)
                if key in errors:
                    self._fail(o.key, f"could not remove {key}: {errors[key]}")
                else:
                    log.info("Removed %s", self.dest.show(o.key))
                    self._add(removed=1)

    # -- one object --------------------------------------------------------------------------------
    def _do(self, action: Action) -> None:
        src = action.source
        assert src is not None
        try:
            if action.kind is Kind.CHECK and self._settle_check(src):
                return
            self._add(total_bytes=src.size)
            for attempt in (1, 2):
                try:
                    self._copy(src)
                    break
                except SourceChanged:
                    if attempt == 2:
                        raise
                    src = self._head_source(src.key)  # overwritten since listed: copy the new version
            log.info("%s -> %s", self.source.show(src.key), self.dest.show(src.key))
            self._add(copied=1, transferred_bytes=src.size)
        except SourceVanished:
            log.warning("Skipped %s: deleted at the source during the run", self.source.show(action.key))
            self._add(vanished=1)
        except MirrorAuthError:
            self._fail(action.key, "credentials refused")
            raise
        except (TransferError, SourceError, ConnectionCheckError, ConfigError) as exc:
            self._fail(action.key, str(exc))
        except (ClientError, BotoCoreError) as exc:
            self._fail(action.key, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # one bad object must not stop the others; reported per object
            self._fail(action.key, f"{type(exc).__name__}: {exc}")

    def _settle_check(self, src: ObjectInfo) -> bool:
        """A CHECK action: same size, but either the ETags are not comparable or the source changed
        after the copy was made (a metadata-only change keeps the ETag). Compare the two HEADs: True when
        nothing is left to do (identical, or only headers/metadata differed and were updated in place)."""
        dest_key = self.dest.key(src.key)
        head = head_or_none(self.dest.client, self.dest.path.bucket, dest_key)
        if head is None or int(head["ContentLength"]) != src.size:
            return False
        dest_meta = dict(head.get("Metadata", {}))
        same_bytes = strip_etag(head.get("ETag")) == src.etag or dest_meta.get(SOURCE_ETAG_META) == src.etag
        if not same_bytes:
            return False
        source_head = self._source_call(src.key, self.source.client.head_object, **self._if_match(src))
        wanted_meta = {**source_head.get("Metadata", {}), SOURCE_ETAG_META: src.etag}
        if content_headers(source_head) == content_headers(head) and wanted_meta == dest_meta:
            self._add(skipped=1)
            return True
        # Only headers/metadata changed at the source: rewrite them in place, server-side.
        self.dest.client.copy_object(
            Bucket=self.dest.path.bucket,
            Key=dest_key,
            CopySource={"Bucket": self.dest.path.bucket, "Key": dest_key},
            CopySourceIfMatch=head["ETag"],
            MetadataDirective="REPLACE",
            Metadata=wanted_meta,
            **content_headers(source_head),
        )
        log.info("%s -> %s (headers and metadata)", self.source.show(src.key), self.dest.show(src.key))
        self._add(updated=1)
        return True

    def _source_call(self, rel: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(Bucket=self.source.path.bucket, Key=self.source.key(rel), **kwargs)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404") or http_status(exc) == 404:
                raise SourceVanished(rel) from None
            if error_code(exc) == "PreconditionFailed" or http_status(exc) == 412:
                raise SourceChanged(rel) from None
            raise

    def _head_source(self, rel: str) -> ObjectInfo:
        head = self._source_call(rel, self.source.client.head_object)
        return ObjectInfo(
            rel, int(head["ContentLength"]), strip_etag(head.get("ETag")), head.get("LastModified")
        )

    def _if_match(self, src: ObjectInfo) -> dict[str, str]:
        return {"IfMatch": f'"{src.etag}"'} if src.etag else {}

    def _copy(self, src: ObjectInfo) -> None:
        if src.size > 0 and (src.size > self.opt.multipart_threshold or is_multipart_etag(src.etag)):
            self._copy_multipart(src)
        else:
            self._copy_single(src)

    def _copy_single(self, src: ObjectInfo) -> None:
        with self._budget.hold(src.size):
            resp = self._source_call(src.key, self.source.client.get_object, **self._if_match(src))
            data = resp["Body"].read()
            if len(data) != src.size:
                raise TransferError(f"read {len(data)} bytes, the listing said {src.size}")
            md5_hex = self._expected_md5(src, data)
            try:
                put = self.dest.client.put_object(
                    Bucket=self.dest.path.bucket,
                    Key=self.dest.key(src.key),
                    Body=data,
                    ContentMD5=_b64(bytes.fromhex(md5_hex)),
                    Metadata={**resp.get("Metadata", {}), SOURCE_ETAG_META: src.etag},
                    **content_headers(resp),
                )
            except ClientError as exc:
                if error_code(exc) in ("BadDigest", "InvalidDigest"):
                    raise TransferError(
                        f"the bytes read do not match the source ETag {src.etag} ({error_code(exc)} from the "
                        "destination); nothing written"
                    ) from None
                raise
        if strip_etag(put.get("ETag")) not in ("", md5_hex):
            raise TransferError(f"destination ETag {put.get('ETag')} is not the MD5 {md5_hex} sent")

    def _expected_md5(self, src: ObjectInfo, data: bytes) -> str:
        """The MD5 the destination must find in the body (sent as Content-MD5, so it checks it).

        A single-part source ETag is the MD5 the source computed when the object was written, so sending
        it verifies the copy end to end (source's bytes -> destination's bytes) without hashing here:
        a damaged read is refused by the destination with BadDigest. Other ETags (empty, or when
        `verify_source_md5` is off for services whose ETag is not an MD5) need a local MD5 pass."""
        if self.opt.verify_source_md5 and _PLAIN_MD5_RE.fullmatch(src.etag or ""):
            return src.etag.lower()
        return hashlib.md5(data).hexdigest()

    def _part_size(self, src: ObjectInfo) -> int:
        """The source's own part size when it is multipart (so the ETags match), else ours."""
        if is_multipart_etag(src.etag):
            n = multipart_count(src.etag)
            # If-Match is left off the part HEAD (moto compares it with the part's ETag); the GET carries
            # it, which is what keeps the copy consistent. Only the part's size is used from this HEAD.
            head = self._source_call(src.key, self.source.client.head_object, PartNumber=1)
            first = int(head.get("ContentLength", 0))
            # Services without ?partNumber support answer with the whole object: guess from size and N.
            if (
                head.get("PartsCount") == n
                and 0 < first <= self.opt.max_part_size
                and -(-src.size // first) == n
            ):
                return first
            if guessed := guess_part_size(src.size, n, self.opt.max_part_size):
                return guessed
        return choose_part_size(src.size, self.opt.part_size)

    def _copy_multipart(self, src: ObjectInfo) -> None:
        """One streamed GET of the whole object, cut into parts that upload in parallel while the read
        goes on (memory: the byte budget). One sequential GET per object beats ranged GETs on services
        that re-read the object per range (moto); objects run in parallel with each other. The GET's
        answer carries the object's content headers and user metadata, which the copy keeps."""
        part_size = self._part_size(src)
        resp = self._source_call(src.key, self.source.client.get_object, **self._if_match(src))
        body = resp["Body"]
        headers = content_headers(resp)
        meta = {**resp.get("Metadata", {}), SOURCE_ETAG_META: src.etag}
        dest_key = self.dest.key(src.key)
        bucket = self.dest.path.bucket
        upload_id = self.dest.client.create_multipart_upload(
            Bucket=bucket, Key=dest_key, Metadata=meta, **headers
        )["UploadId"]
        completed = False
        futures: list[Future[bytes]] = []
        try:
            assert self._parts is not None
            for number, _offset, length in part_ranges(src.size, part_size):
                held = self._budget.acquire(length)
                try:
                    data = _read_exact(body, length)
                except BaseException:
                    self._budget.release(held)
                    raise
                if len(data) != length:
                    self._budget.release(held)
                    raise TransferError(f"part {number}: read {len(data)} bytes, expected {length}")
                futures.append(self._parts.submit(self._upload_part, dest_key, upload_id, number, data, held))
                if futures[0].done() or number % 8 == 0:
                    for f in futures:
                        if f.done() and f.exception() is not None:
                            raise f.exception()  # type: ignore[misc]
            body.close()
            digests = [f.result() for f in futures]  # re-raises the first part failure
            self.dest.client.complete_multipart_upload(
                Bucket=bucket,
                Key=dest_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": n, "ETag": f'"{d.hex()}"'} for n, d in enumerate(digests, start=1)
                    ]
                },
            )
            completed = True
        finally:
            if not completed:
                body.close()
                for f in futures:
                    f.cancel()
                wait(futures)  # let running parts end, so the abort is not raced by a late UploadPart
                try:
                    self.dest.client.abort_multipart_upload(Bucket=bucket, Key=dest_key, UploadId=upload_id)
                except (ClientError, BotoCoreError) as exc:
                    log.warning(
                        "Could not abort the multipart upload of %s: %s (the next run will)", dest_key, exc
                    )
        expected = hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(digests)}"
        check = self.dest.client.head_object(Bucket=bucket, Key=dest_key)
        problems = []
        if int(check["ContentLength"]) != src.size or strip_etag(check.get("ETag")) != expected:
            problems.append(
                f"{check['ContentLength']} bytes / ETag {check.get('ETag')}, expected {src.size} / {expected}"
            )
        if content_headers(check) != headers or check.get("Metadata", {}) != meta:
            problems.append(
                f"headers {content_headers(check)} / metadata {check.get('Metadata')}, "
                f"expected {headers} / {meta}"
            )
        if problems:
            self.dest.client.delete_object(Bucket=bucket, Key=dest_key)  # never leave a bad copy
            raise TransferError(f"destination has {'; '.join(problems)}; removed it")

    def _upload_part(self, dest_key: str, upload_id: str, number: int, data: bytes, held: int) -> bytes:
        try:
            digest = hashlib.md5(data).digest()
            etag = self.dest.client.upload_part(
                Bucket=self.dest.path.bucket,
                Key=dest_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=_b64(digest),
            ).get("ETag", "")
        finally:
            del data
            self._budget.release(held)
        if strip_etag(etag) not in ("", digest.hex()):
            raise TransferError(f"part {number}: destination ETag {etag} is not the MD5 sent")
        return digest


def _read_exact(body: Any, length: int) -> bytes:
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = body.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
