"""LogDog names and archive paths (go.chromium.org/luci/logdog/common/types, luci/config and
logdog/server/archivist's makeStagingPaths).

* project: lowercase letters, digits, '-' and '_', starting with a letter;
* stream name (prefix or name): '/'-separated segments, each starting with an alphanumeric character,
  then alphanumerics or '.', '_', '-', ':'; at most 4096 bytes; a stream path is `<prefix>/+/<name>`;
* archive objects: staged under `<staging base>/<project>/p/<base64url(sha256(prefix))>/+/<name>/`,
  final under `<base>/<project>/<prefix>/+/<name>/`; a name that would make an object name longer
  than 1024 bytes is shortened to `<start>-TRUNCATED-<16 chars of base64url(sha256(name))>` in all
  of them.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from datamover.s3 import S3Path

MAX_STREAM_NAME_LENGTH = 4096
MAX_TAG_KEY_SIZE = 64
MAX_TAG_VALUE_SIZE = 4096
MAX_OBJECT_NAME = 1024  # GCS and S3 alike
_EXTRA = frozenset(".-_:")


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def validate_project(project: str) -> None:
    if not project:
        raise ValueError("cannot have empty name")
    for i, ch in enumerate(project):
        if "a" <= ch <= "z":
            continue
        if ch.isascii() and (ch.isdigit() or ch in "-_"):
            if i == 0:
                raise ValueError("must begin with a letter")
            continue
        raise ValueError(f"invalid character at {i} ({ch})")


def validate_stream_name(name: str) -> None:
    """types.StreamName.Validate."""
    if not name:
        raise ValueError("must contain at least one character")
    size = len(name.encode())
    if size > MAX_STREAM_NAME_LENGTH:
        raise ValueError(f"stream name is too long ({size} > {MAX_STREAM_NAME_LENGTH})")
    segment_start = 0
    pos = 0  # byte offset, as Go reports it
    for ch in name:
        if not _alnum(ch):
            if pos == segment_start:
                raise ValueError(f"segment (at {segment_start}) must begin with alphanumeric character")
            if ch == "/":
                segment_start = pos + 1
            elif ch not in _EXTRA:
                raise ValueError(f"illegal character ({ch}) at index {pos}")
        pos += len(ch.encode())
    if name.endswith("/"):
        raise ValueError("name may not end with a separator")


def validate_tag(key: str, value: str) -> None:
    """types.ValidateTag."""
    try:
        validate_stream_name(key)
    except ValueError as exc:
        raise ValueError(f"invalid tag {key!r}: invalid tag key: {exc}") from None
    if len(key.encode()) > MAX_TAG_KEY_SIZE:
        raise ValueError(f"invalid tag {key!r}: key exceeds maximum size")
    if len(value.encode()) > MAX_TAG_VALUE_SIZE:
        raise ValueError(f"invalid tag {key!r}: value exceeds maximum size")


def split_path(path: str) -> tuple[str, str]:
    """`<prefix>/+/<name>` -> (prefix, name)."""
    prefix, sep, name = path.partition("/+/")
    if not sep or not prefix or not name:
        raise ValueError(f"{path!r} is not a stream path <prefix>/+/<name>")
    return prefix, name


def base64_hash(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class ArchivePaths:
    """Where one stream's archive files go: staged (S3Path prefix) and final."""

    staged: S3Path
    final: S3Path

    def staged_key(self, file: str) -> str:
        return self.staged.key(file)

    def final_key(self, file: str) -> str:
        return self.final.key(file)


def archive_paths(staging_base: S3Path, base: S3Path, project: str, prefix: str, name: str) -> ArchivePaths:
    """makeStagingPaths: the folders of a stream's staged and final objects (file names appended)."""
    prefix_hash = "p/" + base64_hash(prefix)
    longest_file = "logstream.entries"
    staged_len = len(staging_base.key(project, prefix_hash, "+", name, longest_file).encode())
    final_len = len(base.key(project, prefix, "+", name, longest_file).encode())
    cut = max(staged_len, final_len) - MAX_OBJECT_NAME
    if cut > 0:
        suffix = "-TRUNCATED-" + base64_hash(name)[:16]
        raw = name.encode()
        if len(suffix) + cut > len(raw):
            raise ValueError(f"cannot archive {prefix}/+/{name} of project {project}: the prefix is too long")
        name = raw[: len(raw) - len(suffix) - cut].decode(errors="ignore") + suffix
    return ArchivePaths(
        staged=staging_base.child(project, prefix_hash, "+", name),
        final=base.child(project, prefix, "+", name),
    )
