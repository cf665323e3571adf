"""SIGKILL the archivist at each step, then rerun it: one final archive, no staged leftovers (objects
or unfinished uploads), the coordinator right, intermediate storage expunged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from datamover.hooks.s3 import ObjectStoreHook
from tests.integration.logdog.conftest import ROOT_DIR
from tests.integration.logdog.helpers import (
    archivist,
    check_archive,
    list_keys,
    settings,
    store_messages,
    stream_ids,
)
from tests.integration.logdog.kill_child import LEASE
from tests.logdog.butlers import butler_messages
from tests.logdog.streams import BINARY, Stream, descriptor, entry

pytestmark = pytest.mark.integration


def big_binary_stream(mib: int = 12) -> Stream:
    """A binary stream of `mib` MiB in 64 KiB entries (three 5 MiB parts), with a data file."""
    s = Stream(descriptor(name="big/blob", stream_type=BINARY, binary_file_ext="bin"))
    chunk = 64 * 1024
    for i in range(mib * 16):
        s.entries.append(entry(i, i, i * chunk, (i // 10, 0), binary=bytes([i % 251]) * chunk))
    return s


def kill_at(phase: str, schema: str, buckets: tuple[str, str], stream_id: int, tmp_path: Path) -> None:
    marker = tmp_path / f"stopped-{phase}"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.logdog.kill_child",
            schema,
            *buckets,
            str(stream_id),
            phase,
            str(marker),
        ],
        cwd=ROOT_DIR,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"the child ended before {phase}: {child.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"the child never reached {phase}"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("phase", "resumed", "action"),
    [
        ("uploading", "", "archived"),  # unfinished multipart uploads in staging: aborted, staged again
        ("staged", "staged", "archived"),  # staged and recorded, not moved: the rerun moves them
        # one file moved, the others copied (still staged) or not: whichever, the rerun finishes the move
        ("moving", "moved|staged", "archived"),
        ("moved", "moved", "archived"),  # copied, staged deleted, coordinator not updated yet
        ("recorded", "", "already_archived"),  # archived, rows not expunged yet
    ],
)
def test_kill_and_rerun(
    phase: str,
    resumed: str,
    action: str,
    schema: str,
    pg: psycopg.Connection,
    s3: ObjectStoreHook,
    buckets: tuple[str, str],
    tmp_path: Path,
) -> None:
    stream = big_binary_stream()
    store_messages(pg, schema, butler_messages(stream, per_bundle=8))
    sid = stream_ids(pg, schema)["big/blob"]
    client = s3.client()

    kill_at(phase, schema, buckets, sid, tmp_path)
    if phase == "uploading":
        assert client.list_multipart_uploads(Bucket=buckets[0]).get("Uploads"), (
            "expected an unfinished upload"
        )
    if phase == "staged":
        assert len(list_keys(client, buckets[0])) == 3  # entries, index, data.bin
    if phase == "moving":
        assert len(list_keys(client, buckets[0])) == 2  # one staged file moved and deleted
        assert len(list_keys(client, buckets[1])) >= 1

    st = settings(buckets, lease=LEASE, part_size=5 * 1024 * 1024)
    rerun = archivist(pg, schema, client, st, owner="rerun-worker")
    if phase != "recorded":
        # The killed worker's lease is still live: another worker keeps out until it expires.
        assert rerun.archive(sid).action == "skipped"
        time.sleep(LEASE.total_seconds() + 0.5)
    outcome = rerun.archive(sid)
    assert outcome.action == action, outcome
    assert outcome.resumed in resumed.split("|")

    # One final archive, nothing left in staging (objects or unfinished uploads).
    final_keys = sorted(list_keys(client, buckets[1]))
    assert [k.rsplit("/", 1)[1] for k in final_keys] == ["data.bin", "logstream.entries", "logstream.index"]
    assert list_keys(client, buckets[0]) == []
    assert not client.list_multipart_uploads(Bucket=buckets[0]).get("Uploads")

    row = pg.execute(
        f"SELECT state, complete, archived_entry_count, entries_url, entries_size, index_url, index_size, "
        f'data_url, data_size, lease_owner, staged FROM "{schema}".log_streams WHERE id = %s',
        (sid,),
    ).fetchone()
    pg.commit()
    (
        state,
        complete,
        count,
        entries_url,
        entries_size,
        index_url,
        index_size,
        data_url,
        data_size,
        owner,
        staged,
    ) = row
    assert (state, complete, count, owner, staged) == ("archived", True, len(stream.entries), None, None)
    for url, size in ((entries_url, entries_size), (index_url, index_size), (data_url, data_size)):
        bucket, key = url.removeprefix("s3://").split("/", 1)
        assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    assert pg.execute(f'SELECT count(*) FROM "{schema}".log_entries').fetchone() == (0,)
    pg.commit()
    check_archive(
        client, {"entries_url": entries_url, "index_url": index_url, "data_url": data_url}, st.rules, tmp_path
    )
