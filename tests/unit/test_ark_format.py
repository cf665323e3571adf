"""Ark Log detection: the format, every kind of junk, and files still being written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datamover.ark.format import MANIFEST_NAME, ManifestError, detect, parse_manifest, sha256_of
from datamover.ark.scan import scan, table, unknown_names
from tests.support.ark_samples import generate_junk, generate_log


def test_generated_log_is_detected_with_its_summary(tmp_path: Path) -> None:
    log = generate_log(tmp_path, "run_1", [70_000, 5], duration_s=90.5, seed=3)
    logs, rejected = detect(tmp_path, settle_seconds=0)
    assert rejected == []
    assert [lg.name for lg in logs] == ["run_1"]
    found = logs[0]
    assert (found.size, found.file_count, found.duration_s) == (70_005, 2, 90.5)
    assert found.start_time == log.start_time
    for df in found.files:  # the manifest's checksums are those of the bytes on disk
        assert sha256_of(tmp_path / "run_1" / df.path) == df.sha256


def test_generation_is_idempotent(tmp_path: Path) -> None:
    generate_log(tmp_path, "run_1", [1000], seed=1)
    mtime = (tmp_path / "run_1" / MANIFEST_NAME).stat().st_mtime_ns
    generate_log(tmp_path, "run_1", [1000], seed=1)
    assert (tmp_path / "run_1" / MANIFEST_NAME).stat().st_mtime_ns == mtime


def test_every_junk_case_is_rejected_with_its_reason(tmp_path: Path) -> None:
    generate_log(tmp_path, "good", [4096], seed=9)
    expected = generate_junk(tmp_path)
    logs, rejected = detect(tmp_path, settle_seconds=0)
    assert [lg.name for lg in logs] == ["good"]
    reasons = {r.path: r.reason for r in rejected}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(format="other"), "'format' is 'other'"),
        (lambda d: d.update(format_version=2), "unsupported format_version 2"),
        (lambda d: d.update(name="someone_else"), "does not match the directory name"),
        (lambda d: d.update(start_time="yesterday"), "start_time 'yesterday'"),
        (lambda d: d.update(start_time="2026-11-20T08:00:00"), "with a UTC offset"),
        (lambda d: d.update(duration_s=-1), "duration_s -1"),
        (lambda d: d.update(files=[]), "'files' is missing or empty"),
        (lambda d: d.update(colour="red"), "unknown key(s) colour"),
        (lambda d: d["files"][0].update(path="/etc/passwd"), "escapes the log directory"),
        (lambda d: d["files"][0].update(path="data/../../x"), "escapes the log directory"),
        (lambda d: d["files"][0].update(sha256="abc"), "sha256 is not 64 lowercase hex"),
        (lambda d: d["files"].append(dict(d["files"][0])), "listed twice"),
        (lambda d: d["files"][0].update(path=MANIFEST_NAME), "is the manifest itself"),
    ],
)
def test_manifest_rules(tmp_path: Path, mutate, reason: str) -> None:
    log = generate_log(tmp_path, "run_1", [100], seed=1)
    doc = json.loads((log.directory / MANIFEST_NAME).read_text())
    mutate(doc)
    with pytest.raises(ManifestError, match=None) as err:
        parse_manifest(json.dumps(doc).encode(), "run_1")
    assert reason in str(err.value)


def test_symlinked_data_file_is_refused(tmp_path: Path) -> None:
    log = generate_log(tmp_path, "run_1", [100], seed=1)
    target = log.directory / "data" / "seg-00000.arkd"
    target.unlink()
    target.symlink_to("/etc/hostname")
    _, rejected = detect(tmp_path, settle_seconds=0)
    assert "contains symlink data/seg-00000.arkd" in rejected[0].reason


def test_bad_top_level_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad name with spaces").mkdir()
    _, rejected = detect(tmp_path, settle_seconds=0)
    assert "name refused" in rejected[0].reason


def test_unreadable_file(tmp_path: Path) -> None:
    """Root reads any file whatever its mode, so as root the scan runs in a child process without the
    capabilities that bypass file permissions (setpriv, util-linux)."""
    log = generate_log(tmp_path, "run_1", [100], seed=1)
    (log.directory / "data" / "seg-00000.arkd").chmod(0)
    code = (
        "import sys; from datamover.ark.format import detect; "
        "print(detect(sys.argv[1], settle_seconds=0)[1][0].reason)"
    )
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    reason = subprocess.run(
        [*drop, sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "unreadable file data/seg-00000.arkd" in reason


def test_file_still_being_written_is_rejected(tmp_path: Path) -> None:
    log = generate_log(tmp_path, "growing", [1000], seed=1)
    generate_log(tmp_path, "steady", [1000], seed=2)
    data = log.directory / "data" / "seg-00000.arkd"
    stop = threading.Event()

    def writer() -> None:  # the recorder appends while we scan
        with open(data, "ab") as fh:
            while not stop.is_set():
                fh.write(b"x" * 100)
                fh.flush()
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.1)
        logs, rejected = detect(tmp_path, settle_seconds=0.5)
    finally:
        stop.set()
        thread.join()
    assert [lg.name for lg in logs] == ["steady"]
    assert rejected[0].path == "growing"


def test_size_change_during_scan_is_reported_as_still_being_written(tmp_path: Path) -> None:
    log = generate_log(tmp_path, "growing", [1000], seed=1)
    data = log.directory / "data" / "seg-00000.arkd"

    def grow() -> None:
        time.sleep(0.2)
        with open(data, "ab") as fh:
            fh.write(b"more")

    thread = threading.Thread(target=grow)
    thread.start()
    logs, rejected = detect(tmp_path, settle_seconds=0.6)
    thread.join()
    assert logs == []
    assert (
        "still being written" in rejected[0].reason and "changed size from 1000 to 1004" in rejected[0].reason
    )


def test_scan_table_and_selection(tmp_path: Path) -> None:
    generate_log(tmp_path, "run_a", [2000], seed=1)
    generate_log(tmp_path, "run_b", [3000], seed=2)
    generate_junk(tmp_path)
    result = scan(tmp_path, settle_seconds=0)
    json.dumps(result)  # XCom-able
    assert [lg["name"] for lg in result["logs"]] == ["run_a", "run_b"]
    assert set(result["logs"][0]) == {
        "name",
        "start_time",
        "duration_s",
        "size",
        "file_count",
    }  # no checksums
    text = table(result)
    assert "run_a" in text and "run_b" in text and "corrupt_manifest" in text and "Non-Ark data" in text
    non_ark = {r["path"]: r["reason"] for r in result["non_ark"]}
    message = unknown_names(["run_a", "run_b"], non_ark, ["nope", "corrupt_manifest"], str(tmp_path))
    assert "'nope' (not found)" in message and "Ark Logs found: run_a, run_b" in message
    assert "'corrupt_manifest' (not an Ark Log: corrupt manifest" in message
