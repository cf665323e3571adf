"""Streamed, paginated listings of one side of a mirror, keys relative to the side's path.

S3 (and Ceph RGW, moto) return ListObjectsV2 keys in UTF-8 byte order, which is the same order as
Python's code-point string order; the diff relies on it and checks it instead of holding a listing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from botocore.client import BaseClient

from datamover.errors import SourceError
from datamover.s3 import S3Path, strip_etag

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str  # relative to the side's path
    size: int
    etag: str  # without quotes
    last_modified: datetime | None = None


@dataclass(frozen=True)
class KeyRange:
    """Relative keys k with start_after < k <= end (None = unbounded): one shard of the key space."""

    start_after: str | None = None
    end: str | None = None

    def contains(self, key: str) -> bool:
        return (self.start_after is None or key > self.start_after) and (self.end is None or key <= self.end)

    def to_dict(self) -> dict[str, str | None]:
        return {"start_after": self.start_after, "end": self.end}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> KeyRange:
        d = d or {}
        return cls(d.get("start_after"), d.get("end"))


def base_prefix(path: S3Path) -> str:
    """The key prefix every object under `path` starts with ('' for a whole bucket)."""
    return f"{path.prefix}/" if path.prefix else ""


def scope_prefix(path: S3Path, scope: str = "") -> str:
    """Listing prefix for an optional sub-folder `scope` (e.g. a date) below the path."""
    scope = scope.strip("/")
    return base_prefix(path) + (f"{scope}/" if scope else "")


def list_pages(
    client: BaseClient,
    path: S3Path,
    scope: str = "",
    key_range: KeyRange | None = None,
    label: str = "s3",
    page_size: int = 1000,
) -> Iterator[list[ObjectInfo]]:
    """Yield pages of ObjectInfo under path/scope within key_range, in key order."""
    base = base_prefix(path)
    prefix = scope_prefix(path, scope)
    key_range = key_range or KeyRange()
    kwargs: dict[str, Any] = {"Bucket": path.bucket, "Prefix": prefix, "MaxKeys": page_size}
    if key_range.start_after is not None and base + key_range.start_after > prefix:
        kwargs["StartAfter"] = base + key_range.start_after
    previous: str | None = None
    while True:
        resp = client.list_objects_v2(**kwargs)
        page: list[ObjectInfo] = []
        for obj in resp.get("Contents", ()):
            rel = obj["Key"][len(base) :]
            if previous is not None and rel <= previous:
                raise SourceError(
                    f"The listing of {path} on {label} is not in key order ({previous!r} then "
                    f"{rel!r}); the mirror needs an S3 service that lists keys sorted."
                )
            previous = rel
            if key_range.end is not None and rel > key_range.end:
                if page:
                    yield page
                return
            if rel:  # the path's own folder marker is not an object below it
                page.append(
                    ObjectInfo(rel, int(obj["Size"]), strip_etag(obj.get("ETag")), obj.get("LastModified"))
                )
        if page:
            yield page
        if not resp.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = resp["NextContinuationToken"]
        kwargs.pop("StartAfter", None)


def flatten(pages: Iterable[list[T]]) -> Iterator[T]:
    for page in pages:
        yield from page


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Run `items` in a background thread, `depth` items ahead, so two listings overlap in time.

    An exception in the producer is re-raised in the consumer; abandoning the iterator stops the producer.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)

    thread = threading.Thread(target=produce, name="mirror-listing", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
