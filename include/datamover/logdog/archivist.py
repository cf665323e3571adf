"""The LogDog Archivist for one stream: PostgreSQL -> staged objects -> final objects -> coordinator ->
expunge, each step safe to crash in and finished or redone by the next run.

1. **Lease**: the stream goes `archiving` under this worker's lease (a retry of the same task is the
   same owner and takes it back at once; another worker waits for it to expire). The lease is renewed
   while the stream is written.
2. **Stage**: the entries stream out of PostgreSQL (a binary COPY, in batches) into the archive
   writer, whose files go up as multipart uploads under the staging prefix as they are written
   (memory bounded by the part buffers, whatever the stream's size). Unfinished uploads of a crashed
   run are aborted first. The staged objects (keys, sizes, ETags) and the archive's counts are
   recorded in the coordinator; a failure before that deletes what was staged.
3. **Move**: a server-side copy of each staged object to its final key (with the staged ETag, entry
   count and completeness in its metadata), then the staged object is deleted. A copy appears whole
   or not at all, so a final object is never half-written; a rerun finds the staged objects (copy
   again) or the final ones carrying the recorded ETag (moved already).
4. **Coordinator**: `archived` with URLs, sizes, entry count, terminal index, complete flag.
5. **Expunge**: the stream's rows leave intermediate storage (a crash here leaves rows that the next
   run's sweep removes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from datamover.errors import DataMoverError
from datamover.logdog import storage
from datamover.logdog.archive import (
    ENTRIES_FILE,
    INDEX_FILE,
    ArchiveWriter,
    IndexRules,
    StoredEntry,
    data_file_name,
)
from datamover.logdog.coordinator import Action, Delays, decide
from datamover.logdog.names import archive_paths
from datamover.logdog.objects import (
    MultipartWriter,
    Written,
    abort_uploads,
    copy_object,
    delete_quietly,
    matches,
)
from datamover.logdog.proto import log_pb2
from datamover.s3 import S3Path
from datamover.units import MIB

log = logging.getLogger(__name__)


class LeaseLost(DataMoverError):
    """Another worker took this stream's lease (ours expired): stop, leave the stream to it."""


@dataclass(frozen=True)
class ArchivistSettings:
    staging_base: S3Path
    base: S3Path
    rules: IndexRules
    delays: Delays
    lease: timedelta = timedelta(minutes=15)
    data_file: str = "auto"  # auto | always | never
    part_size: int = 8 * MIB
    upload_workers: int = 4
    read_batch_bytes: int = 8 * MIB
    copy_limit: int = 5 * 1024 * MIB  # above: multipart server-side copy


@dataclass
class Outcome:
    stream_id: int
    action: str  # archived | skipped | not_due | already_archived | gone
    reason: str = ""
    path: str = ""
    project: str = ""
    complete: bool | None = None
    log_entry_count: int = 0
    terminal_index: int | None = None
    entries_url: str | None = None
    entries_size: int = 0
    index_url: str | None = None
    index_size: int = 0
    data_url: str | None = None
    data_size: int = 0
    expunged: int = 0
    resumed: str = ""  # "" | "staged" (moved what a crashed run staged) | "moved" (found it moved)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)  # stage, move, record, expunge
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Phases reported to `on_phase` (tests use it to stop a run at a precise point).
PHASE_LEASED, PHASE_STAGED, PHASE_MOVED, PHASE_RECORDED, PHASE_EXPUNGED = (
    "leased",
    "staged",
    "moved",
    "recorded",
    "expunged",
)


class _Source:
    """The stream's rows up to its terminal index in batches, counting what storage held (for
    completeness) and renewing the lease as they go."""

    def __init__(self, batches: Iterator[list[StoredEntry]], renew: Callable[[], None]) -> None:
        self.batches = batches
        self.renew = renew
        self.read = 0
        self.last_index = -1

    def __iter__(self) -> Iterator[list[StoredEntry]]:
        for batch in self.batches:
            self.read += len(batch)
            self.last_index = batch[-1][0]
            self.renew()
            yield batch


def _wants_data_file(setting: str, desc: log_pb2.LogStreamDescriptor) -> bool:
    if setting == "always":
        return True
    if setting == "never":
        return False
    return bool(desc.binary_file_ext)


class Archivist:
    """Archives streams of one storage schema to one object store. `conn` serves coordinator updates
    (committed one by one); `data_conn` carries the long read transaction of the entries."""

    def __init__(
        self,
        conn: psycopg.Connection,
        data_conn: psycopg.Connection,
        schema: str,
        client: Any,
        settings: ArchivistSettings,
        owner: str,
        logger: logging.Logger | None = None,
        on_phase: Callable[[str, int], None] | None = None,
    ) -> None:
        self.conn = conn
        self.data_conn = data_conn
        self.schema = schema
        self.client = client
        self.settings = settings
        self.owner = owner
        self.log = logger or log
        self.on_phase = on_phase

    def _phase(self, phase: str, stream_id: int, outcome: Outcome | None = None) -> None:
        if outcome is not None:
            now = time.monotonic()
            outcome.phase_seconds[phase] = round(now - self._phase_started, 3)
            self._phase_started = now
        if self.on_phase is not None:
            self.on_phase(phase, stream_id)

    def archive(self, stream_id: int) -> Outcome:
        started = time.monotonic()
        outcome = self._archive(stream_id)
        outcome.seconds = round(time.monotonic() - started, 3)
        return outcome

    def _archive(self, stream_id: int) -> Outcome:
        s = self.settings
        decision = decide(storage.load_state(self.conn, self.schema, stream_id), s.delays)
        self.conn.commit()
        if decision.action == Action.GONE:
            return Outcome(stream_id, "gone", decision.reason)
        if decision.action == Action.DONE:
            expunged = storage.expunge(self.conn, self.schema, stream_id)
            return Outcome(stream_id, "already_archived", decision.reason, expunged=expunged)
        if decision.action == Action.WAIT:
            return Outcome(stream_id, "not_due", decision.reason)
        rec = storage.claim_lease(self.conn, self.schema, stream_id, self.owner, s.lease)
        if rec is None:
            return Outcome(
                stream_id, "skipped", "another worker holds the lease, or it was archived meanwhile"
            )
        self._phase_started = time.monotonic()
        self._phase(PHASE_LEASED, stream_id)
        desc = log_pb2.LogStreamDescriptor.FromString(rec.descriptor)
        paths = archive_paths(s.staging_base, s.base, rec.project, rec.prefix, rec.name)
        files = [ENTRIES_FILE, INDEX_FILE]
        if _wants_data_file(s.data_file, desc):
            files.append(data_file_name(desc.binary_file_ext))
        outcome = Outcome(stream_id, "archived", decision.reason, path=rec.path, project=rec.project)
        self.log.info(
            "Archiving %s/%s (stream %d, attempt %d): %s",
            rec.project,
            rec.path,
            stream_id,
            rec.attempts,
            decision.reason,
        )
        try:
            staged = self._resume(rec.staged, paths.final, outcome)
            if staged is None:
                staged = self._stage(rec, desc, paths.staged, files, outcome)
            self._phase(PHASE_STAGED, stream_id, outcome)
            finals = self._move(staged, paths.final, desc, outcome)
            self._phase(PHASE_MOVED, stream_id, outcome)
        except LeaseLost:
            raise
        except BaseException as exc:
            storage.release_lease(
                self.conn, self.schema, stream_id, self.owner, f"{type(exc).__name__}: {exc}"
            )
            raise
        result = {
            "log_entry_count": staged["log_entry_count"],
            "terminal_index": staged["terminal_index"],
            "complete": staged["complete"],
            "entries_url": finals[ENTRIES_FILE].url,
            "entries_size": finals[ENTRIES_FILE].size,
            "index_url": finals[INDEX_FILE].url,
            "index_size": finals[INDEX_FILE].size,
            "data_url": None,
            "data_size": None,
        }
        data = next((f for f in finals if f not in (ENTRIES_FILE, INDEX_FILE)), None)
        if data is not None:
            result["data_url"], result["data_size"] = finals[data].url, finals[data].size
        if not storage.mark_archived(self.conn, self.schema, stream_id, self.owner, result):
            raise LeaseLost(f"stream {stream_id}: the lease was lost before the coordinator update")
        self._phase(PHASE_RECORDED, stream_id, outcome)
        outcome.expunged = storage.expunge(self.conn, self.schema, stream_id)
        self._phase(PHASE_EXPUNGED, stream_id, outcome)
        outcome.complete = staged["complete"]
        outcome.log_entry_count = staged["log_entry_count"]
        outcome.terminal_index = staged["terminal_index"]
        outcome.entries_url, outcome.entries_size = result["entries_url"], result["entries_size"]
        outcome.index_url, outcome.index_size = result["index_url"], result["index_size"]
        outcome.data_url, outcome.data_size = result["data_url"], result["data_size"] or 0
        self.log.info(
            "Archived %s/%s: %d entries, %s, entries %d B, index %d B%s -> %s",
            rec.project,
            rec.path,
            outcome.log_entry_count,
            "complete" if outcome.complete else "INCOMPLETE",
            outcome.entries_size,
            outcome.index_size,
            f", data {outcome.data_size} B" if outcome.data_url else "",
            outcome.entries_url.rsplit("/", 1)[0],
        )
        return outcome

    def _renewer(self, stream_id: int) -> Callable[[], None]:
        every = max(1.0, self.settings.lease.total_seconds() / 3)
        last = [time.monotonic()]

        def renew() -> None:
            if time.monotonic() - last[0] < every:
                return
            if not storage.renew_lease(self.conn, self.schema, stream_id, self.owner, self.settings.lease):
                raise LeaseLost(f"stream {stream_id}: the archival lease expired and another worker took it")
            last[0] = time.monotonic()

        return renew

    def _resume(
        self, staged: dict[str, Any] | None, final_dir: S3Path, outcome: Outcome
    ) -> dict[str, Any] | None:
        """What a crashed run staged, if still usable: each file is staged whole (to be moved) or its
        final copy carries the staged ETag (moved already). Else None: stage again."""
        if not staged:
            return None
        states = []
        for name, d in staged["files"].items():
            src = Written.from_dict(d)
            final = Written(final_dir.bucket, final_dir.key(name), src.size, src.etag)
            if matches(self.client, final, metadata_etag=True):
                states.append("moved")
            elif matches(self.client, src):
                states.append("staged")
            else:
                states.append("missing")
        if "missing" in states:
            self.log.warning("The objects a previous run staged are gone or differ: staging again.")
            storage.clear_staged(self.conn, self.schema, outcome.stream_id)
            return None
        outcome.resumed = "staged" if "staged" in states else "moved"
        self.log.info("Resuming a previous run of this stream: files %s; finishing the move.", states)
        return staged

    def _stage(
        self,
        rec: storage.StreamRecord,
        desc: log_pb2.LogStreamDescriptor,
        staged_dir: S3Path,
        files: list[str],
        outcome: Outcome,
    ) -> dict[str, Any]:
        s = self.settings
        if rec.attempts > 1:  # a previous attempt may have left unfinished uploads
            aborted = abort_uploads(self.client, staged_dir.bucket, staged_dir.prefix + "/")
            if aborted:
                self.log.info(
                    "Aborted %d unfinished upload(s) of a previous run under %s", aborted, staged_dir
                )
        renew = self._renewer(rec.id)
        pool = ThreadPoolExecutor(s.upload_workers * len(files), thread_name_prefix="logdog-part")
        writers = {
            name: MultipartWriter(
                self.client,
                staged_dir.bucket,
                staged_dir.key(name),
                part_size=s.part_size,
                workers=s.upload_workers,
                content_type=desc.content_type
                if name not in (ENTRIES_FILE, INDEX_FILE)
                else "application/octet-stream",
                pool=pool,
            )
            for name in files
        }
        data_name = files[2] if len(files) > 2 else None
        written: dict[str, Written] = {}
        try:
            writer = ArchiveWriter(
                rec.descriptor,
                writers[ENTRIES_FILE],
                writers[INDEX_FILE],
                s.rules,
                data=writers[data_name] if data_name else None,
                warn=self.log.warning,
            )
            source = _Source(
                storage.iter_entry_batches(
                    self.data_conn, self.schema, rec.id, rec.terminal_index, s.read_batch_bytes
                ),
                renew,
            )
            for batch in source:
                if not writer.add_batch(batch):
                    break
            stats = writer.finish()
            if data_name and writers[data_name].size == 0:
                writers[data_name].abort()  # LUCI finalizes no zero-sized file
            closing = [name for name in writers if name != data_name or writers[name].size > 0]
            # The files' last uploads side by side (for a small stream: its PutObjects).
            with ThreadPoolExecutor(len(closing), thread_name_prefix="logdog-close") as closer:
                closed = {name: closer.submit(writers[name].close) for name in closing}
            written.update({name: f.result() for name, f in closed.items() if f.exception() is None})
            for f in closed.values():
                f.result()  # the first failure, if any (the except below drops what was written)
            renew()
        except BaseException:
            for name, w in writers.items():
                if name not in written:
                    w.abort()
            for w in written.values():
                delete_quietly(self.client, w.bucket, w.key)
            raise
        finally:
            pool.shutdown(wait=True)
        complete = rec.terminal_index is not None and source.read == rec.terminal_index + 1
        outcome.warnings = stats.warnings
        staged = {
            "files": {name: w.as_dict() for name, w in written.items()},
            "log_entry_count": stats.log_entry_count,
            "terminal_index": source.last_index,
            "complete": complete,
            "rows_read": source.read,
            "discarded": stats.discarded,
            "adjusted": stats.adjusted,
            "truncated": stats.truncated,
        }
        if not storage.record_staged(self.conn, self.schema, rec.id, self.owner, staged):
            for w in written.values():
                delete_quietly(self.client, w.bucket, w.key)
            raise LeaseLost(f"stream {rec.id}: the lease was lost while staging")
        self.log.info(
            "Staged %s: %d rows read, %d entries archived (%d out of order dropped, %d times raised)%s",
            staged_dir,
            source.read,
            stats.log_entry_count,
            stats.discarded,
            stats.adjusted,
            ", TRUNCATED at 5 GiB" if stats.truncated else "",
        )
        return staged

    def _move(
        self,
        staged: dict[str, Any],
        final_dir: S3Path,
        desc: log_pb2.LogStreamDescriptor,
        outcome: Outcome,
    ) -> dict[str, Written]:
        """Copy each staged object to its final key and delete it, the files side by side. A fresh
        archival trusts the copies' answers; a resumed one first skips what a previous run copied
        already (a crash between two files' moves leaves one moved and one staged: the rerun resumes)."""
        files = {name: Written.from_dict(d) for name, d in staged["files"].items()}
        finals = {
            name: Written(final_dir.bucket, final_dir.key(name), src.size, src.etag)
            for name, src in files.items()
        }
        resumed = bool(outcome.resumed)
        metadata = {
            "log-entry-count": str(staged["log_entry_count"]),
            "complete": str(staged["complete"]).lower(),
        }

        def move_one(name: str) -> None:
            src, final = files[name], finals[name]
            if resumed and matches(self.client, final, metadata_etag=True):
                delete_quietly(self.client, src.bucket, src.key)  # a previous run copied it
                return
            content_type = (
                desc.content_type if name not in (ENTRIES_FILE, INDEX_FILE) else "application/octet-stream"
            )
            copy_object(
                self.client,
                src,
                final.bucket,
                final.key,
                {**metadata, "staged-etag": src.etag},
                content_type,
                limit=self.settings.copy_limit,
                part_size=max(self.settings.part_size, 64 * MIB),
            )
            if resumed and not matches(self.client, final, metadata_etag=True):
                raise OSError(f"the copy of {src.url} to {final.url} does not match (size or metadata)")
            # One DeleteObject per file: on Ceph RGW a DeleteObjects of two keys took ~47 ms, against
            # ~10 ms for two DeleteObject requests side by side.
            delete_quietly(self.client, src.bucket, src.key)

        with ThreadPoolExecutor(len(files), thread_name_prefix="logdog-move") as pool:
            for future in [pool.submit(move_one, name) for name in files]:
                future.result()
        return finals
