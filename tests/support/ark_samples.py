"""Sample Ark Logs for the tests, the demo and the benchmark (not part of the runtime package): complete
logs of record-framed pseudo-sensor data, and one example of each kind of non-Ark data the scan must
report and never touch."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from datamover.ark.format import (
    FORMAT_ID,
    FORMAT_VERSION,
    MANIFEST_NAME,
    ArkLog,
    _Candidate,
    inspect_entry,
    iso,
)

_RECORD_MAGIC = b"ARKR"
_RECORD = 64 * 1024


def write_data_file(path: Path, size: int, seed: int) -> str:
    """Write `size` bytes of record-framed pseudo-sensor data; return its sha256. Each 64 KiB record
    has a 24-byte header (magic, sequence, timestamp) so no two records are equal."""
    rng = random.Random(seed)
    block = rng.randbytes(1 << 20)
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    written, seq = 0, 0
    with open(path, "wb") as fh:
        while written < size:
            n = min(_RECORD, size - written)
            off = (seq * 7919) % (len(block) - _RECORD)
            header = (
                _RECORD_MAGIC
                + seq.to_bytes(8, "little")
                + (1_700_000_000_000_000 + seq * 1000).to_bytes(12, "little")
            )
            record = (header + block[off : off + _RECORD - len(header)])[:n]
            fh.write(record)
            digest.update(record)
            written += n
            seq += 1
    return digest.hexdigest()


def write_manifest(directory: Path, doc: dict[str, Any]) -> None:
    """Atomically write the manifest (temp file + rename), as the recorder does when a log closes."""
    tmp = directory / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / MANIFEST_NAME)


def generate_log(
    base: str | Path,
    name: str,
    file_sizes: Sequence[int],
    start_time: datetime | None = None,
    duration_s: float | None = None,
    seed: int = 0,
) -> ArkLog:
    """Create a complete sample Ark Log (idempotent: an existing valid log of that name is kept)."""
    base = Path(base)
    directory = base / name
    existing = inspect_entry(base, name) if directory.exists() else None
    if isinstance(existing, _Candidate) and [f.size for f in existing.log.files] == list(file_sizes):
        return existing.log
    if directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory)  # a stale or broken sample of the same name: regenerate it whole
    start_time = start_time or datetime(2026, 11, 20, 8, 0, tzinfo=UTC) + timedelta(hours=seed % 48)
    duration_s = duration_s if duration_s is not None else 600.0 + 60.0 * len(file_sizes)
    files = []
    for i, size in enumerate(file_sizes):
        rel = f"data/seg-{i:05d}.arkd"
        files.append(
            {"path": rel, "size": size, "sha256": write_data_file(directory / rel, size, seed * 100_003 + i)}
        )
    doc = {
        "format": FORMAT_ID,
        "format_version": FORMAT_VERSION,
        "name": name,
        "start_time": iso(start_time),
        "duration_s": duration_s,
        "files": files,
        "meta": {"recorder": "ark-sample-generator"},
    }
    write_manifest(directory, doc)
    result = inspect_entry(base, name)
    assert isinstance(result, _Candidate), result
    return result.log


def generate_junk(base: str | Path) -> dict[str, str]:
    """Create one example of every kind of non-Ark data; return {entry name: expected reason fragment}."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    (base / "notes.txt").write_text("operator notes, not a log\n")
    (base / "half_recorded").mkdir(exist_ok=True)
    write_data_file(base / "half_recorded" / "data" / "seg-00000.arkd", 4096, 1)
    corrupt = base / "corrupt_manifest"
    write_data_file(corrupt / "data" / "seg-00000.arkd", 4096, 2)
    (corrupt / MANIFEST_NAME).write_text('{"format": "ark-log", "format_version": 1, "name": ')
    for name, mutate in (
        ("size_mismatch", "size"),
        ("zero_byte", "zero"),
        ("unlisted_file", "extra"),
        ("escaping_path", "escape"),
    ):
        log = generate_log(base, name, [8192], seed=len(name))
        doc = json.loads((log.directory / MANIFEST_NAME).read_text())
        if mutate == "size":
            doc["files"][0]["size"] = 9000
        elif mutate == "zero":
            (log.directory / "data" / "seg-00001.arkd").write_bytes(b"")
            doc["files"].append(
                {"path": "data/seg-00001.arkd", "size": 0, "sha256": hashlib.sha256().hexdigest()}
            )
        elif mutate == "extra":
            (log.directory / "data" / "stray.tmp").write_bytes(b"x")
        else:
            doc["files"][0]["path"] = "../notes.txt"
        write_manifest(log.directory, doc)
    link = base / "linked_log"
    if not link.is_symlink():
        link.symlink_to("/etc")
    return {
        "notes.txt": "stray file",
        "half_recorded": "no ark.json manifest",
        "corrupt_manifest": "corrupt manifest",
        "size_mismatch": "files disagree",
        "zero_byte": "zero-byte file",
        "unlisted_file": "is not listed",
        "escaping_path": "escapes the log directory",
        "linked_log": "symlink refused",
    }
