"""The configs of health and log publishing: include/config/health.yaml and log_publishing.yaml, each with
its pydantic model, plus overrides from the environment of the Airflow component:

    DATAMOVER_HEALTH__PUBLISHER__ENABLED=false        -> health.yaml  publisher.enabled = false
    DATAMOVER_HEALTH__MEMBER__CLUSTER_ID=prod-eu      -> health.yaml  member.cluster_id = "prod-eu"
    DATAMOVER_LOG_PUBLISHING__TASK_LOGS__LEVEL=DEBUG  -> log_publishing.yaml task_logs.level

(`__` separates the keys; values are read as YAML scalars, so false / 15 / [a, b] keep their types.)
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from datamover.config import ConfigModel, load_config
from datamover.streams.logs import DEFAULT_PATTERN, DEFAULT_START

Component = Literal["scheduler", "triggerer", "dag-processor", "api-server", "worker"]
COMPONENTS: tuple[str, ...] = ("scheduler", "triggerer", "dag-processor", "api-server", "worker")
TOPIC = r"^[A-Za-z0-9._-]+$"


def env_overrides(prefix: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Dotted-key overrides from `<PREFIX>__<KEY>__<SUBKEY>=value` environment variables."""
    out: dict[str, Any] = {}
    for key, raw in (os.environ if environ is None else environ).items():
        if not key.startswith(prefix + "__"):
            continue
        dotted = key[len(prefix) + 2 :].lower().replace("__", ".")
        try:
            out[dotted] = yaml.safe_load(raw) if raw != "" else raw
        except yaml.YAMLError:
            out[dotted] = raw
    return out


class MemberConfig(ConfigModel):
    """Who a process is on the health and log streams (Stratos: cluster, partitions, member)."""

    cluster_id: str = Field(default="datamover", min_length=1)
    network_partition_id: str = Field(default="default", min_length=1)
    partition_id: str = Field(default="default", min_length=1)
    # placeholders: {hostname} {component} {pid}
    member_id: str = Field(default="{hostname}.{component}", min_length=1)

    def member(self, component: str, hostname: str | None = None) -> str:
        try:
            return self.member_id.format(
                hostname=hostname or socket.gethostname(), component=component, pid=os.getpid()
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"member.member_id {self.member_id!r}: {exc}; use {{hostname}}, {{component}}, {{pid}}"
            ) from None


class PublisherConfig(ConfigModel):
    enabled: bool = True
    interval_s: float = Field(default=15, gt=0)
    kafka_conn_id: str = "kafka_default"
    topic: str = Field(default="datamover.health", pattern=TOPIC)
    components: list[Component] = Field(default_factory=lambda: list(COMPONENTS))


class Threshold(ConfigModel):
    """A reading is bad above `above` or below `below`; an alert needs it bad for `for_s` seconds."""

    above: float | None = None
    below: float | None = None
    for_s: float = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        return self

    def describe(self) -> str:
        return f"above {self.above:g}" if self.above is not None else f"below {self.below:g}"

    def bad(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < (self.below or 0.0)


class WatchConfig(ConfigModel):
    kafka_conn_id: str | None = None  # None: the publisher's
    topic: str | None = Field(default=None, pattern=TOPIC)
    silence_timeout_s: float = Field(default=60, gt=0)
    members: list[str] = Field(default_factory=lambda: ["*"])  # globs of members watched
    silence_exempt: list[str] = Field(default_factory=lambda: ["*.worker"])  # publish only while busy
    lookback_s: float = Field(default=300, gt=0)
    thresholds: dict[Literal["load_average", "memory_consumption"], Threshold] = Field(default_factory=dict)


class HealthConfig(ConfigModel):
    member: MemberConfig = Field(default_factory=MemberConfig)
    publisher: PublisherConfig = Field(default_factory=PublisherConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @property
    def watch_conn_id(self) -> str:
        return self.watch.kafka_conn_id or self.publisher.kafka_conn_id

    @property
    def watch_topic(self) -> str:
        return self.watch.topic or self.publisher.topic


class TaskLogsConfig(ConfigModel):
    enabled: bool = True
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    loggers: list[str] = Field(default_factory=lambda: ["datamover"])  # stdlib logger namespaces
    # structlog loggers (operators' self.log) whose name starts with one of these
    structlog_prefixes: list[str] = Field(default_factory=lambda: ["airflow.task.operators.datamover"])


class LogFileConfig(ConfigModel):
    path: str = Field(min_length=1)
    component: Component = "scheduler"  # the Airflow component that tails it (one process per host)
    app_name: str = Field(min_length=1)
    alias: str | None = None  # None: the top-level alias
    start: str = DEFAULT_START  # regex: a line that starts a record (others are stack trace lines)
    pattern: str = DEFAULT_PATTERN  # regex with groups time, priority, logger, message
    default_priority: str = "INFO"
    rotated: list[str] = Field(default_factory=lambda: ["{path}.*", "{path}-*"])
    start_at: Literal["beginning", "end"] = "beginning"  # first start only


class TailConfig(ConfigModel):
    poll_interval_s: float = Field(default=0.25, gt=0)
    flush_after_s: float = Field(default=1.0, ge=0)
    rotate_grace_s: float = Field(default=1.0, ge=0)
    # a Kafka transaction's bounds, whichever comes first: records, and bytes of the file read
    batch_records: int = Field(default=20_000, ge=1)
    batch_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    lock_dir: str | None = None  # None: the system temp folder


class LogPublishingConfig(ConfigModel):
    enabled: bool = True
    kafka_conn_id: str = "kafka_default"
    topic: str = Field(default="datamover.logs", pattern=TOPIC)
    # one tiny topic whose consumer-group offsets hold the tailers' file positions (see streams/tail.py)
    positions_topic: str = Field(default="datamover.log.positions", pattern=TOPIC)
    tenant_id: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]+$")
    alias: str = Field(default="datamover", pattern=r"^[A-Za-z0-9_-]+$")
    task_logs: TaskLogsConfig = Field(default_factory=TaskLogsConfig)
    files: list[LogFileConfig] = Field(default_factory=list)
    tail: TailConfig = Field(default_factory=TailConfig)


def health_config(overrides: dict[str, Any] | None = None) -> HealthConfig:
    return load_config(HealthConfig, "health", {**env_overrides("DATAMOVER_HEALTH"), **(overrides or {})})


def log_publishing_config(overrides: dict[str, Any] | None = None) -> LogPublishingConfig:
    return load_config(
        LogPublishingConfig,
        "log_publishing",
        {**env_overrides("DATAMOVER_LOG_PUBLISHING"), **(overrides or {})},
    )
