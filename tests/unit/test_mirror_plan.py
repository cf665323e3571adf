"""Mirror planning: merge-join diff, change detection, key-range shards, part layouts, summary line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from datamover.mirror.engine import MirrorResult, summary_line
from datamover.mirror.listing import KeyRange, ObjectInfo
from datamover.mirror.plan import (
    MIB,
    Kind,
    choose_part_size,
    compare,
    diff,
    guess_part_size,
    multipart_count,
    split_ranges,
)
from datamover.s3 import part_ranges


def o(key: str, size: int = 1, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, size, etag)


def kinds(actions: list) -> list[tuple[str, str]]:
    return [(a.kind.value, a.key) for a in actions]


def test_diff_copies_missing_skips_identical_and_deletes_only_when_asked() -> None:
    src = [o("a"), o("b", 2), o("d"), o("e", etag="x")]
    dst = [o("a"), o("b", 3), o("c"), o("e", etag="y"), o("f")]
    assert kinds(list(diff(src, dst))) == [("skip", "a"), ("copy", "b"), ("copy", "d"), ("check", "e")]
    with_delete = kinds(list(diff(src, dst, remove_extraneous=True)))
    assert ("delete", "c") in with_delete and ("delete", "f") in with_delete
    assert [k for k, _ in with_delete].count("delete") == 2


def test_diff_of_empty_sides() -> None:
    assert kinds(list(diff([], [o("x")], remove_extraneous=True))) == [("delete", "x")]
    assert kinds(list(diff([o("x")], []))) == [("copy", "x")]
    assert list(diff([], [])) == []


def test_diff_orders_unicode_like_s3() -> None:
    # S3 lists in UTF-8 byte order, which equals Python's code point order.
    keys = sorted(["a b", "a+b", "a%b", "ä", "z", "日本/x", "A"])
    assert sorted(keys, key=lambda k: k.encode()) == keys
    assert all(a.kind is Kind.SKIP for a in diff([o(k) for k in keys], [o(k) for k in keys]))


def test_compare_rules() -> None:
    assert compare(o("k", 5, "abc-2"), o("k", 5, "abc-2")).kind is Kind.SKIP
    assert compare(o("k", 5, "abc"), o("k", 6, "abc")).kind is Kind.COPY
    assert compare(o("k", 5, "abc"), o("k", 5, "def-3")).kind is Kind.CHECK
    assert compare(o("k", 5, ""), o("k", 5, "")).kind is Kind.CHECK  # no ETag: never assume identical


def test_a_source_changed_after_its_copy_is_checked() -> None:
    """A metadata-only change keeps the ETag; the newer source LastModified is what gives it away."""
    copied = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    src = ObjectInfo("k", 5, "abc", copied - timedelta(minutes=1))
    dest = ObjectInfo("k", 5, "abc", copied)
    assert compare(src, dest).kind is Kind.SKIP
    changed = ObjectInfo("k", 5, "abc", copied + timedelta(hours=1))
    assert compare(changed, dest).kind is Kind.CHECK


def test_multipart_helpers() -> None:
    assert multipart_count("d41d8cd98f00b204e9800998ecf8427e") == 1
    assert multipart_count("abc-5") == 5
    assert guess_part_size(40 * MIB, 5, 64 * MIB) == 8 * MIB
    assert guess_part_size(40 * MIB + 1, 6, 64 * MIB) == 8 * MIB
    assert guess_part_size(100 * MIB, 2, 64 * MIB) == 64 * MIB  # mc's default wins over 50 (s5cmd)
    assert guess_part_size(100 * MIB, 2, 32 * MIB) is None  # part larger than allowed
    assert guess_part_size(10, 1, 64 * MIB) is None
    assert choose_part_size(100 * MIB, 8 * MIB) == 8 * MIB
    assert choose_part_size(200_000 * MIB, 8 * MIB) == 20 * MIB  # stays within 10,000 parts
    assert part_ranges(10, 4) == [(1, 0, 4), (2, 4, 4), (3, 8, 2)]
    assert part_ranges(0, 4) == []


def test_split_ranges_cover_everything_once() -> None:
    objects = [o(f"k{i:03d}", size=1000 if i < 50 else 10) for i in range(100)]
    ranges = split_ranges(objects, 4, per_object_bytes=0)
    assert 2 <= len(ranges) <= 4
    assert ranges[0].start_after is None and ranges[-1].end is None
    for obj in [*objects, o("0-before-all"), o("zz-after-all")]:
        assert sum(r.contains(obj.key) for r in ranges) == 1, obj.key
    # the big objects come first, so the first range holds fewer keys
    first = sum(ranges[0].contains(x.key) for x in objects)
    assert first < 50
    assert split_ranges(objects, 1) == [KeyRange()]
    assert split_ranges([], 8) == [KeyRange()]
    assert KeyRange.from_dict(ranges[1].to_dict()) == ranges[1]


def test_summary_line_and_combine() -> None:
    assert summary_line(int(17.38 * MIB), int(17.38 * MIB), 17.38 / 18.77) == (
        "Total: 17.38 MiB, Transferred: 17.38 MiB, Speed: 18.77 MiB/s"
    )
    a = MirrorResult(copied=2, skipped=1, transferred_bytes=MIB, total_bytes=MIB, started=10, finished=12)
    b = MirrorResult(
        copied=1,
        failed=1,
        transferred_bytes=MIB,
        total_bytes=2 * MIB,
        started=11,
        finished=14,
        failures=["x: bad"],
    )
    c = MirrorResult.combine([a, b])
    assert (c.copied, c.skipped, c.failed, c.failures) == (3, 1, 1, ["x: bad"])
    assert c.seconds == pytest.approx(4)
    assert MirrorResult.from_dict(c.to_dict()) == c
