"""The reader renders archives that LUCI's own code wrote (`logdogref write`), from local files and
from Ceph, whole or from a stream index on (seeking through the index), and through its CLI."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.archive import IndexRules
from datamover.logdog.reader import local_archive, s3_archive
from datamover.logdog.render import hex_dump
from tests.logdog.refs import raw_entries_from_report, ref_read, ref_write
from tests.logdog.streams import SAMPLES, TEXT, random_stream

pytestmark = pytest.mark.integration

RULES = IndexRules(stream_index_range=5)


def luci_archive(stream, tmp_path: Path) -> tuple[Path, Path, dict]:
    ref = ref_write(stream.tool_json(), tmp_path, RULES)
    entries, index = tmp_path / "ref.entries", tmp_path / "ref.index"
    report = ref_read(entries, index, rules=None)
    assert report["ok"], report["errors"]
    assert ref.summary["archived_entries"] == len(report["entries"])
    return entries, index, report


def expected_for_people(stream, report: dict) -> bytes:
    """What `logdog cat` shows: text lines each ended by \\n, binary in hex, datagrams reassembled."""
    archived = {(e["stream_index"]) for e in report["entries"]}
    kept = [e for e in stream.entries if e.stream_index in archived and e.stream_index in archived]
    by_index = {e["stream_index"]: e for e in report["entries"]}
    out = b""
    buf = b""
    for e in kept:
        if by_index[e.stream_index]["prefix_index"] != e.prefix_index:
            continue
        content = e.WhichOneof("content")
        if content == "text":
            out += b"".join(line.value + b"\n" for line in e.text.lines)
        elif content == "binary":
            out += e.binary.data.hex().encode()
        elif content == "datagram":
            buf += e.datagram.data
            if not e.datagram.HasField("partial") or e.datagram.partial.last:
                out += (
                    f"Datagram #{e.sequence} ({len(buf)} {'byte' if len(buf) == 1 else 'bytes'})\n".encode()
                )
                out += hex_dump(buf) + b"\n"
                buf = b""
    return out


@pytest.mark.parametrize("case", sorted(SAMPLES))
def test_render_luci_archives(case: str, tmp_path: Path) -> None:
    stream = SAMPLES[case]()
    entries, index, report = luci_archive(stream, tmp_path)
    archive = local_archive(str(entries), str(index))
    assert b"".join(archive.render(raw=True)) == b"".join(raw_entries_from_report(report))
    assert b"".join(archive.render()) == expected_for_people(stream, report)
    assert archive.descriptor() == stream.desc


def test_seek_from_a_stream_index(tmp_path: Path) -> None:
    stream = random_stream(random.Random(3), TEXT, n=200)
    entries, index, report = luci_archive(stream, tmp_path)
    archive = local_archive(str(entries), str(index))
    indices = [e["stream_index"] for e in report["entries"]]
    opened: list[int] = []
    real_open = archive.open_entries
    archive.open_entries = lambda offset: (opened.append(offset), real_open(offset))[1]
    for start, end in [(0, None), (indices[57], None), (indices[100] + 1, indices[150]), (10**9, None)]:
        got = [e.stream_index for e in archive.entries(start, end)]
        assert got == [i for i in indices if i >= start and (end is None or i <= end)]
    assert opened[0] == 0 and all(o > 0 for o in opened[1:])  # seeks through the index


def test_read_from_ceph_and_cli(s3: ObjectStoreHook, buckets: tuple[str, str], tmp_path: Path) -> None:
    stream = SAMPLES["text-multiline-partial-outoforder"]()
    entries, index, report = luci_archive(stream, tmp_path)
    client = s3.client()
    folder = "svc/chromium/bb/8812/1/+/steps/compile/stdout"
    client.upload_file(str(entries), buckets[1], f"{folder}/logstream.entries")
    client.upload_file(str(index), buckets[1], f"{folder}/logstream.index")
    archive = s3_archive(client, buckets[1], folder)
    assert b"".join(archive.render(raw=True)) == b"".join(raw_entries_from_report(report))
    url = f"s3://{buckets[1]}/{folder}"
    out = subprocess.run(
        [sys.executable, "-m", "datamover.logdog_cli", "cat", url], capture_output=True, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected_for_people(stream, report)
    info = subprocess.run(
        [sys.executable, "-m", "datamover.logdog_cli", "info", url],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert '"log_entry_count": 6' in info.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "datamover.logdog_cli", "cat", f"s3://{buckets[1]}/nothing/here"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
