"""egress_sync against real services: moto (AWS S3 endpoint) -> the real Ceph RGW."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest
from boto3.s3.transfer import TransferConfig

from datamover.hooks.s3 import ObjectStoreHook
from datamover.mirror.engine import Mirror, MirrorAuthError, MirrorOptions, Side, check_side
from datamover.mirror.plan import Action
from datamover.s3 import S3Path
from datamover.units import MIB
from tests.conftest import AWKWARD_KEYS, aws_connection, run_airflow

pytestmark = pytest.mark.integration

SRC_BUCKET, DST_BUCKET = "sync-test-src", "sync-test-dst"
AWKWARD = AWKWARD_KEYS


def empty_prefix(client, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    for up in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", ()):
        client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])


def side(conn_id: str, path: S3Path, alias: str, **client: object) -> Side:
    return Side(ObjectStoreHook(conn_id).client(**client), path, conn_id, alias)  # type: ignore[arg-type]


@pytest.fixture
def sides() -> Iterator[tuple[Side, Side]]:
    """A fresh source folder in moto and destination folder in Ceph, emptied afterwards."""
    run = uuid.uuid4().hex[:8]
    src = side("egress_input", S3Path(SRC_BUCKET, f"in-{run}/daily"), "input")
    dst = side("egress_output", S3Path(DST_BUCKET, f"out-{run}/dh-secure"), "output")
    check_side(src, create_missing=True)
    check_side(dst, create_missing=True)
    yield src, dst
    empty_prefix(src.client, SRC_BUCKET, f"in-{run}/")
    empty_prefix(dst.client, DST_BUCKET, f"out-{run}/")


def put(side: Side, rel: str, data: bytes, part_mib: int = 8, **extra: object) -> None:
    cfg = TransferConfig(multipart_threshold=part_mib * MIB, multipart_chunksize=part_mib * MIB)
    side.client.upload_fileobj(io.BytesIO(data), side.path.bucket, side.key(rel), Config=cfg, ExtraArgs=extra)


def tree(side: Side) -> dict[str, tuple[int, str]]:
    """rel key -> (size, ETag) of everything under the side's path."""
    out = {}
    base = side.key("")
    for page in side.client.get_paginator("list_objects_v2").paginate(Bucket=side.path.bucket, Prefix=base):
        for obj in page.get("Contents", ()):
            out[obj["Key"][len(base) :]] = (obj["Size"], obj["ETag"].strip('"'))
    return out


def content(side: Side, rel: str) -> str:
    body = side.client.get_object(Bucket=side.path.bucket, Key=side.key(rel))["Body"].read()
    return hashlib.sha256(body).hexdigest()


def assert_mirrored(src: Side, dst: Side) -> None:
    s, d = tree(src), tree(dst)
    assert sorted(s) == sorted(d)
    assert {k: v[0] for k, v in s.items()} == {k: v[0] for k, v in d.items()}
    for key in s:
        assert content(src, key) == content(dst, key), key


def seed_tree(src: Side) -> None:
    for i, key in enumerate(AWKWARD):
        put(src, f"2026-01-05/{key}", b"" if key == "empty" else f"object {i} {key}".encode() * 100)
    put(src, "2026-01-05/large.bin", os.urandom(40 * MIB + 123))  # multipart at the source: 6 x 8 MiB
    put(src, "2026-01-04/older.csv", b"yesterday")


def test_mirror_tree_exactly_then_noop_then_changed(sides: tuple[Side, Side], caplog) -> None:
    src, dst = sides
    seed_tree(src)
    caplog.set_level("INFO", logger="datamover.mirror")
    first = Mirror(src, dst).run()
    assert (first.copied, first.failed, first.skipped) == (len(AWKWARD) + 2, 0, 0)
    assert_mirrored(src, dst)
    # the multipart copy kept the source's part layout, so even its ETag is identical
    assert tree(dst)["2026-01-05/large.bin"][1] == tree(src)["2026-01-05/large.bin"][1]
    assert tree(src)["2026-01-05/large.bin"][1].endswith("-6")
    rel = "2026-01-05/small.txt"
    line = f"`input/{SRC_BUCKET}/{src.key(rel)}` -> `output/{DST_BUCKET}/{dst.key(rel)}`"
    assert line in caplog.text
    assert first.summary_line().startswith("Total: 40.")

    second = Mirror(src, dst).run()
    assert (second.copied, second.skipped, second.failed) == (0, len(AWKWARD) + 2, 0)
    assert second.summary_line().startswith("Total: 0.00 MiB, Transferred: 0.00 MiB")

    put(src, "2026-01-05/small.txt", b"changed, same length?")  # different size
    put(
        src,
        "2026-01-05/plus+sign/100%/a%20b+c.txt",
        b"x" * tree(src)["2026-01-05/plus+sign/100%/a%20b+c.txt"][0],
    )
    third = Mirror(src, dst).run()
    assert (third.copied, third.failed) == (2, 0)
    assert_mirrored(src, dst)


def test_scope_and_removal_only_touch_extraneous_keys(sides: tuple[Side, Side]) -> None:
    src, dst = sides
    put(src, "2026-01-05/a.csv", b"a")
    put(src, "2026-01-05/b.csv", b"b")
    put(src, "2026-01-04/old.csv", b"old")
    put(dst, "2026-01-05/stale.csv", b"gone at the source")
    put(dst, "2026-01-04/keep.csv", b"outside the scope")

    day = Mirror(src, dst, MirrorOptions(scope="2026-01-05")).run()
    assert day.copied == 2 and day.removed == 0
    assert "2026-01-04/old.csv" not in tree(dst)  # scope: only the date folder
    assert "2026-01-05/stale.csv" in tree(dst)  # removal is off by default

    removal = Mirror(src, dst, MirrorOptions(scope="2026-01-05", remove_extraneous=True)).run()
    assert (removal.removed, removal.copied, removal.skipped) == (1, 0, 2)
    assert sorted(tree(dst)) == ["2026-01-04/keep.csv", "2026-01-05/a.csv", "2026-01-05/b.csv"]

    # safety cap: more deletions than allowed -> none at all, reported as a failure
    put(dst, "2026-01-05/x1", b"1")
    put(dst, "2026-01-05/x2", b"2")
    capped = Mirror(src, dst, MirrorOptions(scope="2026-01-05", remove_extraneous=True, max_delete=1)).run()
    assert capped.removed == 0 and capped.failed == 1 and "max_delete" in capped.failures[0]
    assert {"2026-01-05/x1", "2026-01-05/x2"} <= set(tree(dst))


def test_no_removal_when_source_listing_fails(sides: tuple[Side, Side]) -> None:
    src, dst = sides
    put(dst, "k", b"must survive")
    broken = Side(src.client, S3Path("sync-test-no-such-bucket", "x"), "egress_input", "input")
    with pytest.raises(Exception, match="egress_input"):
        Mirror(broken, dst, MirrorOptions(remove_extraneous=True)).run()
    assert "k" in tree(dst)


def test_source_object_deleted_mid_run_is_reported_and_skipped(sides: tuple[Side, Side], caplog) -> None:
    src, dst = sides
    for name in ("a", "b", "c"):
        put(src, name, name.encode())

    class DeletesB(Mirror):
        def _do(self, action: Action) -> None:
            if action.key == "b":  # listed, then deleted before its copy starts
                src.client.delete_object(Bucket=src.path.bucket, Key=src.key("b"))
            super()._do(action)

    caplog.set_level("WARNING", logger="datamover.mirror")
    result = DeletesB(src, dst).run()
    assert (result.copied, result.vanished, result.failed) == (2, 1, 0)
    assert sorted(tree(dst)) == ["a", "c"]
    assert "deleted at the source during the run" in caplog.text


def test_wrong_credentials_fail_fast_naming_the_connection(sides: tuple[Side, Side]) -> None:
    src, dst = sides
    aws_connection("egress_output_bad_key", service="ceph", password="wrong-secret")
    bad = side("egress_output_bad_key", dst.path, "output")
    t = time.monotonic()
    with pytest.raises(MirrorAuthError, match=r"'egress_output_bad_key'.*credentials"):
        check_side(bad)
    with pytest.raises(MirrorAuthError, match="egress_output_bad_key"):
        Mirror(src, bad).run()
    assert time.monotonic() - t < 10


def test_unreachable_destination_names_the_connection() -> None:
    aws_connection("egress_output_gone", endpoint_url="http://127.0.0.1:9")
    gone = side("egress_output_gone", S3Path("b"), "output", retries=2, connect_timeout=2)
    with pytest.raises(Exception, match=r"'egress_output_gone'.*cannot reach"):
        check_side(gone)


KILLED_COPY = textwrap.dedent("""
    import sys
    from datamover.mirror.engine import Mirror, MirrorOptions
    from datamover.s3 import S3Path
    from tests.integration.test_egress_sync import side
    src = side("egress_input", S3Path.parse(sys.argv[1]), "input")
    dst = side("egress_output", S3Path.parse(sys.argv[2]), "output")
    # one object and one part at a time, so the kill lands mid-upload
    Mirror(src, dst, MirrorOptions(object_workers=1, part_workers=1, max_buffer_bytes=8 << 20)).run()
""")


def test_killed_mid_run_then_rerun_leaves_no_partial_objects(sides: tuple[Side, Side], root) -> None:
    src, dst = sides
    for i in range(3):
        put(src, f"big-{i}.bin", os.urandom(24 * MIB))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_COPY,
            f"{src.path.bucket}/{src.path.prefix}",
            f"{dst.path.bucket}/{dst.path.prefix}",
        ],
        cwd=root,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ups = dst.client.list_multipart_uploads(Bucket=dst.path.bucket, Prefix=dst.key("")).get(
                "Uploads", []
            )
            if ups:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the copy never started a multipart upload")
    finally:
        proc.kill()
        proc.wait()
    assert len(tree(dst)) < 3  # really killed mid-run

    rerun = Mirror(src, dst).run()
    assert rerun.aborted_uploads >= 1 and rerun.failed == 0
    assert (
        dst.client.list_multipart_uploads(Bucket=dst.path.bucket, Prefix=dst.key("")).get("Uploads", []) == []
    )
    assert_mirrored(src, dst)


def test_airflow_dags_test_egress_sync(sides: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = sides
    put(src, "2026-01-05/t1.csv.gz", b"one" * 1000)
    put(src, "2026-01-05/sub/t2.csv.gz", b"two" * 1000)
    put(src, "2026-01-04/other-day.csv.gz", b"not in scope")
    for conn_id, service, path in (("egress_input", "moto", src.path), ("egress_output", "ceph", dst.path)):
        saved = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
        aws_connection(conn_id, service=service, path=f"{path.bucket}/{path.prefix}")
        test_value = os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = saved
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", test_value)  # restored after the test
    # data interval [2026-01-05, 2026-01-06): the folder of the 5th, as egress_dump writes it
    proc = run_airflow("dags", "test", "egress_sync", "2026-01-06")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Total: 0.01 MiB, Transferred: 0.01 MiB" in out
    assert "Copied: 2, Updated: 0, Skipped: 0, Removed: 0, Failed: 0, Vanished: 0" in out
    assert sorted(tree(dst)) == ["2026-01-05/sub/t2.csv.gz", "2026-01-05/t1.csv.gz"]


def test_multipart_headers_and_metadata_are_mirrored_and_kept_in_step(sides: tuple[Side, Side]) -> None:
    """A multipart source with Content-Type, Content-Encoding and user metadata arrives with all of them
    (they come from the object, not from a part HEAD); later metadata-only changes at the source are
    carried over: in place when the source kept its ETag, by a new copy when the change gave it one."""
    src, dst = sides
    big, small = "2026-01-05/big.bin", "2026-01-05/small.json"
    headers = {"ContentType": "application/x-big", "ContentEncoding": "identity", "CacheControl": "no-cache"}
    put(src, big, os.urandom(40 * MIB), part_mib=5, Metadata={"origin": "summit", "run": "42"}, **headers)
    put(src, small, b'{"a": 1}', Metadata={"origin": "summit"}, ContentType="application/json")
    assert tree(src)[big][1].endswith("-8")
    first = Mirror(src, dst).run()
    assert (first.copied, first.failed) == (2, 0)
    head = dst.client.head_object(Bucket=dst.path.bucket, Key=dst.key(big))
    assert {k: head.get(k) for k in headers} == headers
    assert user_metadata(head) == {"origin": "summit", "run": "42"}
    assert strip(head["ETag"]) == tree(src)[big][1]  # the source's own part layout

    time.sleep(1.1)  # LastModified has one-second resolution
    for rel, content_type, run in ((big, "application/x-bigger", "43"), (small, "text/plain", "7")):
        src.client.copy_object(
            Bucket=src.path.bucket,
            Key=src.key(rel),
            CopySource={"Bucket": src.path.bucket, "Key": src.key(rel)},
            MetadataDirective="REPLACE",
            Metadata={"origin": "summit", "run": run},
            ContentType=content_type,
        )
    assert tree(src)[small][1] == tree(dst)[small][1]  # same bytes, same MD5 ETag: only metadata changed
    second = Mirror(src, dst).run()
    assert (second.updated, second.failed) == (1, 0)  # the small one, in place, no bytes sent again
    assert second.copied == 1 and second.transferred_bytes == 40 * MIB  # the big one has a new ETag
    for rel, content_type, run in ((big, "application/x-bigger", "43"), (small, "text/plain", "7")):
        head = dst.client.head_object(Bucket=dst.path.bucket, Key=dst.key(rel))
        assert (head["ContentType"], user_metadata(head)) == (content_type, {"origin": "summit", "run": run})
    assert_mirrored(src, dst)
    third = Mirror(src, dst).run()
    assert (third.copied, third.updated, third.skipped) == (0, 0, 2)  # in step again: listings only


def user_metadata(head: dict) -> dict[str, str]:
    return {k: v for k, v in head["Metadata"].items() if k != "datamover-source-etag"}


def strip(etag: str) -> str:
    return etag.strip('"')


def test_a_missing_destination_bucket_is_created(sides: tuple[Side, Side]) -> None:
    _, dst = sides
    fresh = side("egress_output", S3Path(f"sync-fresh-{uuid.uuid4().hex[:8]}", "x"), "output")
    try:
        assert check_side(fresh, create_missing=True) == f"egress_output: created bucket {fresh.path.bucket}"
        assert check_side(fresh) == f"egress_output: {fresh.path} readable"
    finally:
        dst.client.delete_bucket(Bucket=fresh.path.bucket)
