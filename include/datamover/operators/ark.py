"""Thin Airflow adapters for the Offload Stage (logic in datamover.ark) and the Ark Log catalog.

Every operator takes the run's trigger-form values as `overrides` and reads the Offload Stage config
through `datamover.ark.config.config_for_run`, so the file and the form are validated by one model.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException
from botocore.exceptions import BotoCoreError, ClientError

from datamover.ark import catalog
from datamover.ark.config import OffloadStageConfig, config_for_run
from datamover.ark.credentials import check_credentials
from datamover.ark.format import detect
from datamover.ark.offload import LogResult, OffloadEngine, OffloadOptions
from datamover.ark.progress import ERROR, FAILED, REMOVED, SCANNING, Progress, StatusPublisher, status_event
from datamover.ark.scan import human_bytes, scan, table, unknown_names
from datamover.assets import ARK_LOGS
from datamover.errors import ConfigError, PermanentError, TransferError
from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.lineage import DatasetName, local_path, s3_object, s3_uri
from datamover.operators.base import fail_fast, settle_heap
from datamover.operators.lineage import LineageMixin, postgres_dataset, this_host
from datamover.s3 import error_code, is_not_found
from datamover.streams.definition import stream
from datamover.units import MIB

STATUS_TOPIC = "ark.offload.status"
STATUS_STREAM = "ark_offload_status"
FAILED_KEY = "failed"  # XCom beside the return value: [{"name", "error", "permanent"}]


def s3_hook(config: OffloadStageConfig) -> ObjectStoreHook:
    return ObjectStoreHook(config.aws_conn_id, endpoint_url=config.endpoint_url)


def log_folder(bucket: str, manifest_key: str) -> DatasetName:
    """An offloaded log's folder in S3 (what the offload writes and the catalog reads), from its manifest."""
    return s3_object(bucket, manifest_key.rsplit("/", 1)[0] if "/" in manifest_key else "")


class _ArkOperator(LineageMixin, BaseOperator):
    template_fields: Sequence[str] = ("overrides",)

    def __init__(self, *, overrides: Mapping[str, Any] | str | None = None, **kwargs: Any) -> None:
        """`overrides`: the run's form values (the DAG passes "{{ params }}")."""
        super().__init__(**kwargs)
        self.overrides = overrides

    def config(self) -> OffloadStageConfig:
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise ConfigError(f"{self.task_id}: overrides must be a mapping, got {self.overrides!r}")
        return config_for_run(self.overrides)


class ArkCredentialsOperator(_ArkOperator):
    """STS GetCallerIdentity + HeadBucket: refused credentials fail the run at once, before any data moves.
    Lineage: none."""

    def execute(self, context: Any) -> str:
        with fail_fast():
            config = self.config()
            result = check_credentials(
                s3_hook(config), config.destination_bucket, create=config.create_bucket
            )
        self.log.info("Credentials OK: %s", result)
        return result


class ArkScanOperator(_ArkOperator):
    """Scan storage_base_path; log the table of Ark Logs and ignored non-Ark data; return it (XCom).
    Lineage: the storage folder it reads (on this worker's host)."""

    template_fields: Sequence[str] = (*_ArkOperator.template_fields, "settle_seconds")

    def __init__(self, *, settle_seconds: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settle_seconds = settle_seconds

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast():
            config = self.config().check_storage()
            self.lineage(inputs=[local_path(this_host(), str(config.storage))])
            result = scan(config.storage, settle_seconds=float(self.settle_seconds))
        self.log.info("\n%s", table(result))
        return result


class ArkOffloadOperator(_ArkOperator):
    """Offload the selected logs with one engine (parallel across logs, files and parts) so one publisher
    reports the overall progress at 0.5 Hz on the status stream.

    The logs are scanned again when this runs (a retry after a crash sees what the crash left): a
    selected log that is no longer on disk counts as offloaded when an earlier run left it complete
    and verified in S3. A log that fails for a reason a retry may fix (the endpoint) is tried again up
    to `log_attempts` times; one that fails for good (local data contradicting its manifest) is not.
    The task succeeds with what it did: it returns one record per log verified in S3 (for the asset
    events) and pushes XCom `failed`; the DAG's `report` task then fails the run naming the failed logs.
    Lineage: each selected log's local folder -> its folder in S3 (outputs: the logs verified in S3).
    """

    template_fields: Sequence[str] = (*_ArkOperator.template_fields, "logs", "dry_run", "kafka_conn_id")

    def __init__(
        self,
        *,
        logs: Any = None,
        dry_run: Any = False,
        kafka_conn_id: str = "kafka_default",
        status_topic: str = STATUS_TOPIC,
        concurrency: int = 10,
        min_part_size_mib: int = 8,
        status_interval: float = 2.0,
        settle_seconds: float = 2.0,
        log_attempts: int = 3,
        retry_pause: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.logs = logs
        self.dry_run = dry_run
        self.kafka_conn_id = kafka_conn_id
        self.status_topic = status_topic
        self.concurrency = concurrency
        self.min_part_size_mib = min_part_size_mib
        self.status_interval = status_interval
        self.settle_seconds = settle_seconds
        self.log_attempts = log_attempts
        self.retry_pause = retry_pause

    def execute(self, context: Any) -> list[dict[str, Any]]:
        settle_heap()
        with fail_fast():
            return self._offload(context)

    def _selection(self) -> list[str] | None:
        if self.logs in (None, "", []):
            return None
        if not isinstance(self.logs, list) or not all(isinstance(n, str) for n in self.logs):
            raise ConfigError(f"param 'logs' must be a list of log names, got {self.logs!r}.")
        return list(dict.fromkeys(self.logs))

    def _offload(self, context: Any) -> list[dict[str, Any]]:
        if self.dry_run is True:
            raise AirflowSkipException("dry_run: scan only (the Rescan button); nothing offloaded")
        config = self.config().check_storage()
        wanted = self._selection()
        hook = s3_hook(config)
        engine = OffloadEngine(
            hook.client(pool=self.concurrency + 8),
            config.destination_bucket,
            OffloadOptions(
                prefix=config.prefix,
                concurrency=self.concurrency,
                min_part_size=self.min_part_size_mib * MIB,
                remove_after_offload=config.remove_after_offload,
            ),
        )
        found, rejected = detect(config.storage, settle_seconds=self.settle_seconds)
        by_name = {lg.name: lg for lg in found}
        names = wanted if wanted is not None else sorted(by_name)
        local = [by_name[n] for n in names if n in by_name]
        earlier: list[LogResult] = []
        unknown = []
        for name in (n for n in names if n not in by_name):
            done = engine.already_offloaded(name)
            (earlier.append(done) if done else unknown.append(name))
        if unknown:
            non_ark = {r.path: r.reason for r in rejected}
            raise ConfigError(unknown_names(list(by_name), non_ark, unknown, str(config.storage)))
        if not names:
            raise AirflowSkipException(f"no Ark Logs in {config.storage}")

        host = this_host()
        self.lineage(inputs=[local_path(host, str(config.storage / name)) for name in names])
        progress = Progress.for_logs(local)
        engine.progress = progress
        for r in earlier:  # not on disk any more: an earlier run offloaded and removed it
            r.state = REMOVED
            progress.add_finished(r.name, r.size, REMOVED)
            self.log.info(
                "%s: offloaded by an earlier run (complete and verified in S3, no longer on disk)", r.name
            )
        self.log.info(
            "Offloading %d log(s), %s, to s3://%s/%s/ via %s (remove_after_offload=%s)",
            len(local),
            human_bytes(progress.bytes_total),
            config.destination_bucket,
            config.prefix,
            hook.describe(),
            config.remove_after_offload,
        )
        channel = KafkaHook(self.kafka_conn_id).side_channel(self.status_topic, ensure=True, logger=self.log)
        publisher = StatusPublisher(
            progress, stream(STATUS_STREAM), channel.send, context["run_id"], interval=self.status_interval
        )
        results: dict[str, LogResult] = {}
        try:
            with publisher:
                try:
                    results = self._run_with_retries(engine, local, progress, config)
                finally:
                    progress.finish()
        except Exception as exc:  # unexpected: still publish Error as the final status
            progress.error(f"{type(exc).__name__}: {exc}")
            progress.state = ERROR
            publisher.publish()
            raise
        finally:
            channel.close()
        self.log.info(
            "Offload %s: %s; stats: %s", progress.state.upper(), progress.line(), engine.stats.to_dict()
        )
        done = [*earlier, *(r for r in results.values() if r.state != FAILED)]
        failed = [r for r in results.values() if r.state == FAILED]
        records = [self._record(r, config, context["run_id"]) for r in done]
        self.lineage(outputs=[s3_uri(r.s3_uri) for r in done])
        for r in done:
            self.log.info("%s: %s, %d object(s), %s", r.name, r.state, len(r.objects), r.s3_uri)
        context["ti"].xcom_push(
            key=FAILED_KEY,
            value=[{"name": r.name, "error": r.error, "permanent": r.permanent} for r in failed],
        )
        return records

    def _run_with_retries(
        self, engine: OffloadEngine, logs: list[Any], progress: Progress, config: OffloadStageConfig
    ) -> dict[str, LogResult]:
        results = {r.name: r for r in engine.run(logs)}
        for attempt in range(2, self.log_attempts + 1):
            again = [r.name for r in results.values() if r.state == FAILED and not r.permanent]
            if not again:
                break
            self.log.warning(
                "Trying %d log(s) again in %.0f s (attempt %d of %d): %s",
                len(again),
                self.retry_pause * (attempt - 1),
                attempt,
                self.log_attempts,
                ", ".join(again),
            )
            time.sleep(self.retry_pause * (attempt - 1))
            fresh, _ = detect(config.storage, settle_seconds=0)  # what the failed attempt left on disk
            retry = [lg for lg in fresh if lg.name in again]
            for name in again:
                progress.restart(name)
            results.update({r.name: r for r in engine.run(retry)})
        return results

    def _record(self, r: LogResult, config: OffloadStageConfig, run_id: str) -> dict[str, Any]:
        """What the asset event carries (and catalog_ingest reads): names and sizes, no checksums."""
        return {
            "name": r.name,
            "s3_uri": r.s3_uri,
            "bucket": config.destination_bucket,
            "manifest_key": r.manifest_key,
            "state": r.state,
            "earlier_run": r.earlier,
            "aws_conn_id": config.aws_conn_id,
            "endpoint_override": config.endpoint_url,
            "offload_id": run_id,
            "objects": len(r.objects),
            "size": r.size,
        }


def offload_report(
    offloaded: Sequence[Mapping[str, Any]] | None, failed: Sequence[Mapping[str, Any]] | None
) -> str:
    """The run's closing line; raises PermanentError (the run fails, no retry) when a log failed."""
    offloaded, failed = list(offloaded or []), list(failed or [])
    removed = sorted(r["name"] for r in offloaded if r["state"] == REMOVED)
    kept = sorted(r["name"] for r in offloaded if r["state"] != REMOVED)
    parts = [
        f"{len(offloaded)} log(s) offloaded and verified in S3"
        + (f" ({', '.join(kept)} kept locally" if kept else " (")
        + (f"{'; ' if kept else ''}{', '.join(removed)} removed locally)" if removed else ")"),
    ]
    if failed:
        parts.append(
            f"{len(failed)} failed, their local files untouched and completed parts kept in S3 for the next "
            "run: " + "; ".join(f"{f['name']}: {f['error']}" for f in failed)
        )
        raise PermanentError(". ".join(parts) + ". Fix the cause, then run again: it resumes.")
    return parts[0].replace(" ()", "")


def publish_scanning(kafka_conn_id: str, topic: str, offload_id: str, logs_total: int) -> None:
    """One 'scanning' status message, so a UI sees the run start before the offload (best effort)."""
    snapshot = {
        "state": SCANNING,
        "percent": 0.0,
        "bytes_done": 0,
        "bytes_total": 0,
        "bytes_per_second": 0.0,
        "logs_done": 0,
        "logs_total": logs_total,
        "logs": {},
        "errors": [],
    }
    event = status_event(stream(STATUS_STREAM), snapshot, offload_id, host=socket.gethostname())
    with KafkaHook(kafka_conn_id).side_channel(topic, ensure=True) as channel:
        channel.send(offload_id.encode(), event.encode())


class CatalogIngestOperator(_ArkOperator):
    """Upsert one catalog row per Ark Log from its manifest in S3, one log at a time. Logs come from the
    triggering `ark_logs` asset events; without events (a manual run), from every manifest under the
    configured prefix. A log that cannot be read (its bucket or manifest is gone) is named with its
    bucket and key; the rows of the others are written first, then the task fails.
    Lineage: each log's folder in S3 whose manifest was read -> the catalog table."""

    template_fields: Sequence[str] = (*_ArkOperator.template_fields, "postgres_conn_id", "table")

    def __init__(
        self,
        *,
        postgres_conn_id: str = "catalog_postgres",
        table: str = catalog.TABLE,
        recheck_events: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.table = table
        self.recheck_events = recheck_events

    def execute(self, context: Any) -> list[str]:
        with fail_fast():
            return self._ingest(context)

    def _targets(self, context: Any) -> list[_Target]:
        """What to ingest: the logs of the triggering `ark_logs` events, else (a manual run) every manifest
        under the configured prefix; plus logs of recent events that are not in the catalog yet."""
        events = list((context.get("triggering_asset_events") or {}).get(ARK_LOGS, []) or [])
        targets = {t.where: t for t in (_Target.of(e.extra or {}, consumed=True) for e in events)}
        if events:
            self.log.info("Ingesting %d log(s) from %d triggering asset event(s)", len(targets), len(events))
        else:
            config = self.config()
            client = s3_hook(config).client()
            try:
                keys = list(catalog.manifest_keys(client, config.destination_bucket, config.prefix))
            except ClientError as exc:
                if error_code(exc) != "NoSuchBucket":
                    raise
                raise ConfigError(
                    f"Bucket {config.destination_bucket!r} (destination_bucket in ark_offload.yaml, "
                    f"connection {config.aws_conn_id!r}) does not exist: nothing was offloaded there yet, "
                    "or fix the name."
                ) from exc
            self.log.info(
                "No triggering asset events: ingesting the %d manifest(s) under s3://%s/%s/",
                len(keys),
                config.destination_bucket,
                config.prefix,
            )
            for key in keys:
                target = _Target(
                    config.aws_conn_id, config.endpoint_url, config.destination_bucket, key, consumed=True
                )
                targets[target.where] = target
        # Airflow 3.3 can leave an event unconsumed (one arriving while a run is already queued waits for
        # the next event, apache/airflow#56050): recent events whose log has no catalog row are ingested too.
        recent = [
            _Target.of(extra, consumed=False)
            for event in self._recent_events(context)
            if (extra := event.extra or {}).get("manifest_key") and extra.get("bucket")
        ]
        missing = self._not_in_catalog({t.name: t for t in recent if t.where not in targets})
        if missing:
            self.log.info("Also ingesting %s: offloaded (recent events), not in the catalog", sorted(missing))
            targets.update({t.where: t for t in missing.values()})
        return list(targets.values())

    def _recent_events(self, context: Any) -> list[Any]:
        if self.recheck_events <= 0 or ARK_LOGS not in (self.inlets or []):
            return []
        return list(context["inlet_events"][ARK_LOGS].ascending(False).limit(self.recheck_events))

    def _not_in_catalog(self, candidates: dict[str, _Target]) -> dict[str, _Target]:
        if not candidates:
            return {}
        with PostgresHook(self.postgres_conn_id).connect() as conn:
            catalog.ensure_table(conn, self.table)
            known = catalog.names_present(conn, list(candidates), self.table)
        return {name: t for name, t in candidates.items() if name not in known}

    def _ingest(self, context: Any) -> list[str]:
        clients: dict[tuple[str, str | None], Any] = {}
        rows, problems, gone = [], [], 0
        pg = PostgresHook(self.postgres_conn_id)
        self.lineage(outputs=[lambda: postgres_dataset(pg, self.table)])
        for target in self._targets(context):
            where = f"s3://{target.bucket}/{target.manifest_key} (connection {target.conn_id!r})"
            try:
                client_key = (target.conn_id, target.endpoint_override)
                if client_key not in clients:
                    clients[client_key] = ObjectStoreHook(
                        target.conn_id, endpoint_url=target.endpoint_override
                    ).client()
                rows.append(catalog.row_from_s3(clients[client_key], target.bucket, target.manifest_key))
                self.lineage(inputs=[log_folder(target.bucket, target.manifest_key)])
            except (ClientError, BotoCoreError, ValueError, PermanentError) as exc:
                reason = f"S3 {error_code(exc)}" if isinstance(exc, ClientError) else str(exc)
                if not target.consumed:  # an old event of this asset, not this run's: reported, not fatal
                    self.log.warning("Not ingested (earlier event) %r: %s: %s", target.name, where, reason)
                    continue
                gone += is_not_found(exc) or isinstance(exc, (ValueError, PermanentError))
                problems.append(f"log {target.name!r}: {where}: {reason}")
                self.log.error("Not ingested: %s", problems[-1])
        with pg.connect() as conn:
            catalog.ensure_table(conn, self.table)
            count = catalog.upsert(conn, rows, self.table)
        for row in rows:
            self.log.info(
                "catalog %s: %s %s, %d file(s), %s",
                self.table,
                row["name"],
                row["s3_uri"],
                row["file_count"],
                human_bytes(row["size_bytes"]),
            )
        self.log.info("Upserted %d row(s) into %s", count, self.table)
        if problems:
            message = f"{len(problems)} log(s) not ingested ({count} were): " + "; ".join(problems)
            # A bucket or manifest that is gone does not come back by retrying; anything else may.
            raise (PermanentError if gone == len(problems) else TransferError)(message)
        return [row["name"] for row in rows]


@dataclass(frozen=True)
class _Target:
    """One log's manifest to read, with the connection that can read it."""

    conn_id: str
    endpoint_override: str | None
    bucket: str
    manifest_key: str
    consumed: bool  # from this run's own events (or its manual listing), as opposed to a recheck

    @classmethod
    def of(cls, extra: Mapping[str, Any], *, consumed: bool) -> _Target:
        return cls(
            str(extra.get("aws_conn_id") or "aws_default"),
            extra.get("endpoint_override"),
            str(extra["bucket"]),
            str(extra["manifest_key"]),
            consumed,
        )

    @property
    def where(self) -> tuple[str, str]:
        return self.bucket, self.manifest_key

    @property
    def name(self) -> str:
        return catalog.log_name(self.manifest_key)


__all__ = [
    "FAILED_KEY",
    "STATUS_TOPIC",
    "ArkCredentialsOperator",
    "ArkOffloadOperator",
    "ArkScanOperator",
    "CatalogIngestOperator",
    "offload_report",
    "publish_scanning",
]
