"""Thin Airflow adapters for the Offload Stage (logic in datamover.ark) and the Ark Log catalog."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from datamover.ark import catalog
from datamover.ark.config import OffloadStageConfig, load_config
from datamover.ark.credentials import check_credentials
from datamover.ark.offload import MiB, OffloadEngine, OffloadOptions, summary
from datamover.ark.progress import ERROR, FAILED, SCANNING, Progress, StatusPublisher, status_event
from datamover.ark.scan import human_bytes, logs_of, scan, table
from datamover.assets import ARK_LOGS
from datamover.errors import ConnectionCheckError, TransferError
from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.s3lean import LeanS3
from datamover.streams.definition import stream

STATUS_TOPIC = "ark.offload.status"
STATUS_STREAM = "ark_offload_status"


def _config(
    config_path: str | None, overrides: Mapping[str, Any] | None, check_storage: bool = True
) -> OffloadStageConfig:
    return load_config(config_path or None, overrides or {}, check_storage=check_storage)


class _ArkOperator(BaseOperator):
    template_fields: Sequence[str] = ("config_path", "overrides", "aws_conn_id")

    def __init__(
        self,
        *,
        config_path: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        aws_conn_id: str = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.overrides = overrides
        self.aws_conn_id = aws_conn_id

    def s3_hook(self, config: OffloadStageConfig) -> ObjectStoreHook:
        return ObjectStoreHook(self.aws_conn_id, endpoint_override=config.endpoint_url)


class ArkCredentialsOperator(_ArkOperator):
    """STS GetCallerIdentity + HeadBucket: fail at once, before any data moves."""

    template_fields: Sequence[str] = (*_ArkOperator.template_fields, "create_bucket")

    def __init__(self, *, create_bucket: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.create_bucket = create_bucket

    def execute(self, context: Any) -> str:
        config = _config(self.config_path, self.overrides, check_storage=False)
        try:
            result = check_credentials(
                self.s3_hook(config).endpoint(),
                config.destination_bucket,
                create_bucket=bool(self.create_bucket),
            )
        except ConnectionCheckError as exc:
            # Credentials do not heal by retrying: fail the run now, before any data is read or sent.
            raise AirflowFailException(str(exc)) from exc
        self.log.info("Credentials OK: %s", result)
        return result


class ArkScanOperator(_ArkOperator):
    """Scan storage_base_path; log the table; return the scan (JSON) as XCom."""

    template_fields: Sequence[str] = (*_ArkOperator.template_fields, "settle_seconds")

    def __init__(self, *, settle_seconds: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settle_seconds = settle_seconds

    def execute(self, context: Any) -> dict[str, Any]:
        config = _config(self.config_path, self.overrides)
        result = scan(config.storage_base_path, settle_seconds=float(self.settle_seconds))
        self.log.info("\n%s", table(result))
        return result


class ArkOffloadOperator(_ArkOperator):
    """Offload the selected logs with one engine (parallel across logs, files and parts) so a single
    publisher reports the overall progress at 0.5 Hz; returns one record per verified log."""

    template_fields: Sequence[str] = (
        *_ArkOperator.template_fields,
        "selection",
        "prefix",
        "kafka_conn_id",
        "status_topic",
    )

    def __init__(
        self,
        *,
        selection: Any,
        prefix: str = "logs",
        kafka_conn_id: str = "kafka_default",
        status_topic: str = STATUS_TOPIC,
        concurrency: int = 10,
        min_part_size_mib: int = 8,
        status_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.selection = selection
        self.prefix = prefix
        self.kafka_conn_id = kafka_conn_id
        self.status_topic = status_topic
        self.concurrency = concurrency
        self.min_part_size_mib = min_part_size_mib
        self.status_interval = status_interval

    def execute(self, context: Any) -> list[dict[str, Any]]:
        config = _config(self.config_path, self.overrides)
        logs = logs_of(self.selection or [])
        hook = self.s3_hook(config)
        progress = Progress.for_logs(logs)
        producer = KafkaHook(self.kafka_conn_id).producer()
        offload_id = context["run_id"]

        def send(key: bytes, value: bytes) -> None:
            producer.produce(self.status_topic, key=key, value=value)
            producer.poll(0)

        engine = OffloadEngine(
            hook.client(max_pool_connections=self.concurrency + 8),
            config.destination_bucket,
            OffloadOptions(
                prefix=self.prefix,
                concurrency=self.concurrency,
                min_part_size=self.min_part_size_mib * MiB,
                remove_after_offload=config.remove_after_offload,
            ),
            progress=progress,
            lean=LeanS3(hook.endpoint(), pool=self.concurrency + 8),
        )
        self.log.info(
            "Offloading %d log(s), %s, to s3://%s/%s/ (remove_after_offload=%s)",
            len(logs),
            human_bytes(progress.bytes_total),
            config.destination_bucket,
            self.prefix,
            config.remove_after_offload,
        )
        publisher = StatusPublisher(
            progress,
            stream(STATUS_STREAM),
            send,
            offload_id,
            interval=self.status_interval,
            log=self.log.info,
        )
        try:
            with publisher:
                try:
                    results = engine.run(logs)
                finally:
                    progress.finish()
        except Exception as exc:  # unexpected: still publish Error as the final status
            progress.error(f"{type(exc).__name__}: {exc}")
            progress.state = ERROR
            publisher.publish()
            raise
        finally:
            producer.flush(10)
        report = summary(results, engine.stats)
        self.log.info("Offload %s; stats: %s", progress.state.upper(), report["stats"])
        failed = [r for r in results if r.state == FAILED]
        if failed:
            raise TransferError(
                f"{len(failed)} of {len(results)} log(s) not offloaded: "
                + "; ".join(f"{r.name}: {r.error}" for r in failed)
                + ". Their local files are untouched and completed parts stay in S3: run again to resume."
            )
        endpoint = hook.endpoint()
        return [
            {
                "name": r.name,
                "s3_uri": r.s3_uri,
                "bucket": config.destination_bucket,
                "manifest_key": r.manifest_key,
                "state": r.state,
                "aws_conn_id": self.aws_conn_id,
                "endpoint_override": config.endpoint_url,
                "offload_id": offload_id,
                "objects": len(r.objects),
                "size": sum(o["size"] for o in r.objects.values()),
                "endpoint": endpoint.endpoint_url,
            }
            for r in results
        ]


def publish_scanning(kafka_conn_id: str, topic: str, offload_id: str, logs_total: int) -> None:
    """One 'scanning' status message, so a UI sees the run start before the offload."""
    producer = KafkaHook(kafka_conn_id).producer()
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
    producer.produce(topic, key=offload_id.encode(), value=event.encode())
    producer.flush(10)


class CatalogIngestOperator(BaseOperator):
    """Upsert one catalog row per Ark Log from its manifest in S3. Logs come from the triggering
    `ark_logs` asset events; without events (a manual run), from every manifest under the prefix."""

    template_fields: Sequence[str] = (
        "config_path",
        "overrides",
        "prefix",
        "aws_conn_id",
        "postgres_conn_id",
        "table",
    )

    def __init__(
        self,
        *,
        config_path: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        prefix: str = "logs",
        aws_conn_id: str = "aws_default",
        postgres_conn_id: str = "catalog_postgres",
        table: str = catalog.TABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.overrides = overrides
        self.prefix = prefix
        self.aws_conn_id = aws_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.table = table

    def execute(self, context: Any) -> list[str]:
        events = list((context.get("triggering_asset_events") or {}).get(ARK_LOGS, []) or [])
        targets: list[tuple[str, str | None, str, str]] = []  # (conn id, endpoint override, bucket, key)
        for event in events:
            extra = event.extra or {}
            targets.append(
                (
                    str(extra.get("aws_conn_id") or self.aws_conn_id),
                    extra.get("endpoint_override"),
                    str(extra["bucket"]),
                    str(extra["manifest_key"]),
                )
            )
        if events:
            self.log.info("Ingesting %d log(s) from the triggering asset events", len(targets))
        else:
            config = _config(self.config_path, self.overrides, check_storage=False)
            client = ObjectStoreHook(self.aws_conn_id, endpoint_override=config.endpoint_url).client()
            keys = list(catalog.manifest_keys(client, config.destination_bucket, self.prefix))
            self.log.info(
                "No triggering asset events: ingesting the %d manifest(s) under s3://%s/%s/",
                len(keys),
                config.destination_bucket,
                self.prefix,
            )
            targets = [(self.aws_conn_id, config.endpoint_url, config.destination_bucket, k) for k in keys]
        clients: dict[tuple[str, str | None], Any] = {}
        rows = []
        for conn_id, override, bucket, key in targets:
            if (conn_id, override) not in clients:
                clients[conn_id, override] = ObjectStoreHook(conn_id, endpoint_override=override).client()
            rows.append(catalog.row_from_s3(clients[conn_id, override], bucket, key))
        with PostgresHook(self.postgres_conn_id).connect() as conn:
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
        return [row["name"] for row in rows]
