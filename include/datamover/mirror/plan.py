"""What to do per key: a streaming merge-join of two sorted listings, plus key-range shards.

Change detection, chosen so that a no-op resync needs the two listings and nothing else:
- sizes differ -> copy;
- ETags equal -> identical. This covers single-part objects (both ETags are the MD5) and multipart
  objects, because the engine copies a multipart source with the source's own part layout, so the
  destination's multipart ETag (MD5 of the part MD5s + "-N") comes out identical;
- otherwise (same size, different ETag: e.g. a big single-part source we had to split, or an object
  written by another tool) -> `check`: one HEAD of the destination compares the source ETag the engine
  recorded in the object's metadata (`x-amz-meta-datamover-source-etag`); equal means identical.
- Headers and user metadata are not in a listing. A change of only those (a CopyObject with
  MetadataDirective REPLACE at the source) keeps the ETag but gives the source a newer LastModified
  than the destination's copy: such a pair is a `check` too, and the engine compares the two HEADs
  (and rewrites the destination's headers/metadata in place when only they differ). A copy written by
  this engine is newer than its source, so a no-op resync still needs only the two listings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from datamover.mirror.listing import KeyRange, ObjectInfo
from datamover.units import MIB

SOURCE_ETAG_META = "datamover-source-etag"  # x-amz-meta-datamover-source-etag on every copy


class Kind(StrEnum):
    COPY = "copy"
    SKIP = "skip"
    CHECK = "check"  # sizes equal, ETags not comparable: decide from the destination's metadata
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    key: str
    source: ObjectInfo | None
    dest: ObjectInfo | None
    reason: str = ""


def is_multipart_etag(etag: str) -> bool:
    return "-" in etag


def multipart_count(etag: str) -> int:
    """Number of parts encoded in a multipart ETag ('<md5>-N'), 1 for a plain MD5 ETag."""
    if not is_multipart_etag(etag):
        return 1
    try:
        return int(etag.rsplit("-", 1)[1])
    except ValueError:
        return 1


def compare(source: ObjectInfo, dest: ObjectInfo) -> Action:
    if source.size != dest.size:
        return Action(Kind.COPY, source.key, source, dest, f"size {dest.size} -> {source.size}")
    if source.etag and source.etag == dest.etag:
        if source.last_modified and dest.last_modified and source.last_modified > dest.last_modified:
            return Action(Kind.CHECK, source.key, source, dest, "source changed after the copy")
        return Action(Kind.SKIP, source.key, source, dest, "identical")
    return Action(Kind.CHECK, source.key, source, dest, "same size, ETags differ")


def diff(
    source: Iterable[ObjectInfo], dest: Iterable[ObjectInfo], remove_extraneous: bool = False
) -> Iterator[Action]:
    """Merge-join two listings sorted by key. DELETE actions are only produced with remove_extraneous;
    the caller must not act on them before `source` was read to the end without error."""
    src_it, dst_it = iter(source), iter(dest)
    s = next(src_it, None)
    d = next(dst_it, None)
    while s is not None or d is not None:
        if d is None or (s is not None and s.key < d.key):
            assert s is not None
            yield Action(Kind.COPY, s.key, s, None, "missing")
            s = next(src_it, None)
        elif s is None or d.key < s.key:
            if remove_extraneous:
                yield Action(Kind.DELETE, d.key, None, d, "not at the source")
            d = next(dst_it, None)
        else:
            yield compare(s, d)
            s = next(src_it, None)
            d = next(dst_it, None)


# Standard part sizes of common clients (boto3/aws cli 8, mc 16/64, rclone 5, s5cmd 50 MiB), tried first.
_COMMON_PART_MIB = (8, 16, 5, 64, 32, 50, 10, 15, 100, 128)


def guess_part_size(size: int, parts: int, max_part_size: int) -> int | None:
    """A part size p with ceil(size/p) == parts, preferring common client defaults; None if none fits.
    Used when the source service cannot tell part 1's size (HEAD ?partNumber=1)."""
    if parts < 2 or size <= 0:
        return None
    candidates = [m * MIB for m in _COMMON_PART_MIB]
    candidates += [m * MIB for m in range(5, max_part_size // MIB + 1) if m not in _COMMON_PART_MIB]
    for p in candidates:
        if p <= max_part_size and math.ceil(size / p) == parts:
            return p
    return None


def choose_part_size(size: int, default: int, max_parts: int = 10_000) -> int:
    """The engine's own part size for a source without a layout to follow: default, grown to fit."""
    need = math.ceil(size / max_parts)
    if need <= default:
        return default
    return math.ceil(need / MIB) * MIB


def split_ranges(
    objects: Iterable[ObjectInfo], shards: int, per_object_bytes: int = 256 * 1024
) -> list[KeyRange]:
    """Cut the key space into at most `shards` contiguous ranges of about equal work.

    Work per object = its size + a fixed per-request cost. The first range starts unbounded and the
    last ends unbounded, so together they cover every key, including destination-only ones."""
    if shards <= 1:
        return [KeyRange()]
    keys: list[str] = []
    weights: list[int] = []
    for obj in objects:
        keys.append(obj.key)
        weights.append(obj.size + per_object_bytes)
    total = sum(weights)
    if not keys:
        return [KeyRange()]
    target = total / shards
    bounds: list[str] = []
    acc = 0
    for key, w in zip(keys, weights, strict=True):
        acc += w
        if acc >= target * (len(bounds) + 1) and len(bounds) < shards - 1 and key != keys[-1]:
            bounds.append(key)
    ranges: list[KeyRange] = []
    previous: str | None = None
    for b in bounds:
        ranges.append(KeyRange(previous, b))
        previous = b
    ranges.append(KeyRange(previous, None))
    return ranges
