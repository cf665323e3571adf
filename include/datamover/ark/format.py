"""The Ark Log on-disk format, defined once (the public material only says that logs have a name, a
start time and a duration and that non-Ark data must be told apart).

An Ark Log is a directory directly under `storage_base_path` whose name matches `NAME_PATTERN` and
which holds a manifest `ark.json` plus the data files the manifest lists, nothing else:

    <storage_base_path>/<name>/ark.json
    <storage_base_path>/<name>/data/seg-00000.arkd ...

    ark.json = {
      "format": "ark-log", "format_version": 1,
      "name": "<name>",                       # equals the directory name
      "start_time": "2026-11-20T08:00:00Z",   # ISO 8601 with a UTC offset
      "duration_s": 3600.0,                   # >= 0
      "files": [{"path": "data/seg-00000.arkd", "size": 1048576, "sha256": "<64 hex>"}, ...],
      "meta": {...}                           # optional, free-form (vehicle, recorder, ...)
    }

The recorder writes the manifest last (atomically), so a directory without one is a log still being
recorded or not a log at all. Detection is strict; anything that is not exactly this is reported
with a reason and left alone: never uploaded, never deleted. Data checksums are verified while the
offload reads the files (one read pass), not at scan time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from datamover.units import MIB

MANIFEST_NAME = "ark.json"
FORMAT_ID = "ark-log"
FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PATH_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 16 * MIB
MAX_PATH_DEPTH = 4


class ManifestError(ValueError):
    """The manifest exists but is not a valid Ark Log manifest."""


@dataclass(frozen=True)
class DataFile:
    path: str  # POSIX, relative to the log directory
    size: int
    sha256: str


@dataclass(frozen=True)
class ArkLog:
    name: str
    directory: Path
    start_time: datetime
    duration_s: float
    files: tuple[DataFile, ...]
    format_version: int = FORMAT_VERSION
    manifest_size: int = 0

    @property
    def size(self) -> int:
        """Bytes of data files (the manifest not included)."""
        return sum(f.size for f in self.files)

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def end_time(self) -> datetime:
        return self.start_time + timedelta(seconds=self.duration_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "directory": str(self.directory),
            "start_time": iso(self.start_time),
            "duration_s": self.duration_s,
            "size": self.size,
            "file_count": self.file_count,
            "format_version": self.format_version,
            "manifest_size": self.manifest_size,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArkLog:
        return cls(
            name=data["name"],
            directory=Path(data["directory"]),
            start_time=parse_time(data["start_time"]),
            duration_s=float(data["duration_s"]),
            files=tuple(DataFile(f["path"], int(f["size"]), f["sha256"]) for f in data["files"]),
            format_version=int(data.get("format_version", FORMAT_VERSION)),
            manifest_size=int(data.get("manifest_size", 0)),
        )


@dataclass(frozen=True)
class Rejected:
    """Something under storage_base_path that is not a (complete) Ark Log, and why."""

    path: str  # relative to storage_base_path
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return ts.astimezone(UTC)


def parse_manifest(raw: bytes, directory_name: str) -> dict[str, Any]:
    """Validate the manifest bytes; raise ManifestError naming the first problem."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"corrupt manifest: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ManifestError("corrupt manifest: top level is not an object")
    allowed = {"format", "format_version", "name", "start_time", "duration_s", "files", "meta"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ManifestError(f"corrupt manifest: unknown key(s) {', '.join(unknown)}")
    if doc.get("format") != FORMAT_ID:
        raise ManifestError(f"corrupt manifest: 'format' is {doc.get('format')!r}, expected {FORMAT_ID!r}")
    version = doc.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ManifestError(f"unsupported format_version {version!r} (this reader knows {FORMAT_VERSION})")
    if doc.get("name") != directory_name:
        raise ManifestError(f"manifest name {doc.get('name')!r} does not match the directory name")
    try:
        parse_time(str(doc.get("start_time")))
    except ValueError:
        raise ManifestError(
            f"corrupt manifest: start_time {doc.get('start_time')!r} is not ISO 8601 with a UTC offset"
        ) from None
    duration = doc.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < 1e9:
        raise ManifestError(f"corrupt manifest: duration_s {duration!r} is not a number >= 0")
    if not isinstance(doc.get("meta", {}), dict):
        raise ManifestError("corrupt manifest: 'meta' is not an object")
    files = doc.get("files")
    if not isinstance(files, list) or not files:
        raise ManifestError("corrupt manifest: 'files' is missing or empty")
    seen: set[str] = set()
    for i, entry in enumerate(files):
        if not isinstance(entry, dict) or set(entry) != {"path", "size", "sha256"}:
            raise ManifestError(f"corrupt manifest: files[{i}] must have exactly path, size, sha256")
        path, size, digest = entry["path"], entry["size"], entry["sha256"]
        problem = _check_rel_path(path)
        if problem:
            raise ManifestError(f"files[{i}] path {path!r} {problem}")
        if path in seen:
            raise ManifestError(f"corrupt manifest: {path!r} listed twice")
        seen.add(path)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ManifestError(f"corrupt manifest: files[{i}] size {size!r} is not a whole number >= 0")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ManifestError(f"corrupt manifest: files[{i}] sha256 is not 64 lowercase hex digits")
    return doc


def _check_rel_path(path: Any) -> str | None:
    """Data file paths must stay inside the log directory: relative, plain names, no `..`."""
    if not isinstance(path, str) or not path:
        return "is not a non-empty string"
    if path.startswith("/") or "\\" in path:
        return "escapes the log directory (absolute or backslash path refused)"
    parts = PurePosixPath(path).parts
    if any(p in (".", "..") for p in path.split("/")):
        return "escapes the log directory ('..' or '.' refused)"
    if len(parts) > MAX_PATH_DEPTH or not all(_PATH_PART.match(p) for p in parts):
        return f"is not a plain relative path (letters, digits, . _ -, depth <= {MAX_PATH_DEPTH})"
    if path == MANIFEST_NAME:
        return "is the manifest itself"
    return None


@dataclass
class _Candidate:
    log: ArkLog
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # rel path -> (size, mtime_ns)


def inspect_entry(base: Path, name: str) -> _Candidate | Rejected:
    """Decide whether `base/name` is an Ark Log; never follows symlinks."""
    path = base / name
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Rejected(name, f"cannot stat: {exc.strerror}")
    if stat.S_ISLNK(st.st_mode):
        return Rejected(name, "symlink refused (it may point outside storage_base_path)")
    if not NAME_PATTERN.match(name):
        return Rejected(name, "name refused: Ark Log names are letters, digits, '.', '_', '-' (max 128)")
    if stat.S_ISREG(st.st_mode):
        return Rejected(name, "stray file, not an Ark Log directory")
    if not stat.S_ISDIR(st.st_mode):
        return Rejected(name, "not a regular file or directory")
    manifest_path = path / MANIFEST_NAME
    try:
        mst = os.lstat(manifest_path)
    except FileNotFoundError:
        return Rejected(name, f"no {MANIFEST_NAME} manifest (not an Ark Log, or still being recorded)")
    except OSError as exc:
        return Rejected(name, f"manifest unreadable: {exc.strerror}")
    if not stat.S_ISREG(mst.st_mode):
        return Rejected(name, f"{MANIFEST_NAME} is not a regular file (symlinks refused)")
    if mst.st_size > MAX_MANIFEST_BYTES:
        return Rejected(name, f"corrupt manifest: {mst.st_size} bytes is larger than {MAX_MANIFEST_BYTES}")
    try:
        raw = _read_nofollow(manifest_path)
    except OSError as exc:
        return Rejected(name, f"manifest unreadable: {exc.strerror}")
    try:
        doc = parse_manifest(raw, name)
    except ManifestError as exc:
        return Rejected(name, str(exc))
    files = tuple(DataFile(f["path"], f["size"], f["sha256"]) for f in doc["files"])
    listed = {f.path: f for f in files}

    # Walk the directory without following links: everything must be listed, real, readable.
    on_disk: dict[str, os.stat_result] = {}
    for root, dirs, names in os.walk(path, followlinks=False):
        for entry in [*dirs, *names]:
            full = Path(root) / entry
            rel = full.relative_to(path).as_posix()
            est = os.lstat(full)
            if stat.S_ISLNK(est.st_mode):
                return Rejected(
                    name, f"contains symlink {rel}: refused (may point outside storage_base_path)"
                )
            if stat.S_ISDIR(est.st_mode):
                continue
            if rel == MANIFEST_NAME:
                continue
            if not stat.S_ISREG(est.st_mode):
                return Rejected(name, f"contains {rel}, which is not a regular file")
            on_disk[rel] = est
    unlisted = sorted(set(on_disk) - set(listed))
    if unlisted:
        more = f" (+{len(unlisted) - 1} more)" if len(unlisted) > 1 else ""
        return Rejected(name, f"files disagree with manifest: {unlisted[0]} is not listed{more}")
    candidate = _Candidate(
        ArkLog(
            name=name,
            directory=path,
            start_time=parse_time(doc["start_time"]),
            duration_s=float(doc["duration_s"]),
            files=files,
            manifest_size=mst.st_size,
        )
    )
    for data_file in files:
        est = on_disk.get(data_file.path)
        if est is None:
            return Rejected(name, f"files disagree with manifest: {data_file.path} is missing")
        if est.st_size == 0 or data_file.size == 0:
            return Rejected(name, f"zero-byte file {data_file.path}")
        if est.st_size != data_file.size:
            return Rejected(
                name,
                f"files disagree with manifest: {data_file.path} is {est.st_size} bytes, "
                f"manifest says {data_file.size}",
            )
        try:
            with open(path / data_file.path, "rb", buffering=0) as fh:
                fh.read(1)
        except OSError as exc:
            return Rejected(name, f"unreadable file {data_file.path}: {exc.strerror}")
        candidate.stats[data_file.path] = (est.st_size, est.st_mtime_ns)
    candidate.stats[MANIFEST_NAME] = (mst.st_size, mst.st_mtime_ns)
    return candidate


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read(MAX_MANIFEST_BYTES + 1)


def detect(base: str | Path, settle_seconds: float = 1.0) -> tuple[list[ArkLog], list[Rejected]]:
    """Scan the top level of `base`. Files whose size or mtime changes between the first pass and a
    second pass `settle_seconds` later are still being written: their log is rejected."""
    base = Path(base)
    try:
        names = sorted(os.listdir(base))
    except OSError as exc:
        raise OSError(
            exc.errno or errno.EIO, f"cannot list storage_base_path {base}: {exc.strerror}"
        ) from None
    found: list[_Candidate] = []
    rejected: list[Rejected] = []
    for name in names:
        result = inspect_entry(base, name)
        (rejected if isinstance(result, Rejected) else found).append(result)  # type: ignore[arg-type]
    if found and settle_seconds > 0:
        time.sleep(settle_seconds)
    logs: list[ArkLog] = []
    for cand in found:
        changed = _changed(cand)
        if changed:
            rejected.append(Rejected(cand.log.name, f"still being written: {changed}"))
        else:
            logs.append(cand.log)
    rejected.sort(key=lambda r: r.path)
    return logs, rejected


def _changed(cand: _Candidate) -> str | None:
    for rel, (size, mtime) in cand.stats.items():
        try:
            st = os.lstat(cand.log.directory / rel)
        except OSError as exc:
            return f"{rel} vanished during the scan ({exc.strerror})"
        if st.st_size != size:
            return f"{rel} changed size from {size} to {st.st_size} bytes during the scan"
        if st.st_mtime_ns != mtime:
            return f"{rel} was modified during the scan"
    return None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            digest.update(data)
    return digest.hexdigest()


def names(logs: Iterable[ArkLog]) -> list[str]:
    return [log.name for log in logs]
