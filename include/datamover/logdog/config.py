"""`LogArchivalConfig`: include/config/log_archival.yaml, the collector's and the archivist's settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from datamover.config import ConfigModel, load_config
from datamover.logdog.archive import IndexRules
from datamover.logdog.coordinator import Delays
from datamover.s3 import S3Path

CONFIG_NAME = "log_archival"


class Connections(ConfigModel):
    kafka_config_id: str = "kafka_default"
    postgres_conn_id: str = "logdog_postgres"
    archive_conn_id: str = "logdog_archive"


class CollectorConfig(ConfigModel):
    topic: str = Field("logdog.butler", min_length=1)
    consumer_group: str = Field("datamover-logdog-collector", min_length=1)
    batch_messages: int = Field(500, ge=1, le=100_000)
    max_runtime_s: int = Field(240, ge=1)
    idle_timeout_s: int = Field(10, ge=1)


class StorageConfig(ConfigModel):
    schema_name: str = Field("logdog", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class IndexConfig(ConfigModel):
    stream_range: int = Field(0, ge=0)
    prefix_range: int = Field(0, ge=0)
    byte_range: int = Field(0, ge=0)

    @property
    def rules(self) -> IndexRules:
        return IndexRules(self.stream_range, self.prefix_range, self.byte_range)


class ArchivalConfig(ConfigModel):
    settle_delay_s: int = Field(120, ge=0)
    delay_max_s: int = Field(86400, ge=1)
    completeness_threshold_s: int = Field(3600, ge=0)
    horizon_s: int = Field(300, ge=0)
    max_streams_per_run: int = Field(200, ge=1, le=10_000)
    poll_interval_s: float = Field(15, gt=0)
    lease_s: int = Field(900, ge=10)
    staging_base: str
    base: str
    create_buckets: bool = False
    data_file: Literal["auto", "always", "never"] = "auto"
    part_size_mib: int = Field(8, ge=5, le=512)
    upload_workers: int = Field(4, ge=1, le=32)
    index: IndexConfig = IndexConfig()

    @field_validator("staging_base", "base")
    @classmethod
    def _path(cls, value: str) -> str:
        S3Path.parse(value)
        return value

    @property
    def delays(self) -> Delays:
        return Delays(
            settle_delay=timedelta(seconds=self.settle_delay_s),
            delay_max=timedelta(seconds=self.delay_max_s),
            completeness_threshold=timedelta(seconds=self.completeness_threshold_s),
        )

    @property
    def staging_path(self) -> S3Path:
        return S3Path.parse(self.staging_base)

    @property
    def base_path(self) -> S3Path:
        return S3Path.parse(self.base)

    @property
    def sensor_timeout_s(self) -> int:
        """How long a run's sensor may wait for a stream before leaving it to a later run."""
        return self.horizon_s + self.settle_delay_s + self.completeness_threshold_s + 300


class LogArchivalConfig(ConfigModel):
    connections: Connections = Connections()
    collector: CollectorConfig = CollectorConfig()
    storage: StorageConfig = StorageConfig()
    archival: ArchivalConfig

    @property
    def schema(self) -> str:
        return self.storage.schema_name


def load(overrides: Mapping[str, Any] | None = None) -> LogArchivalConfig:
    return load_config(LogArchivalConfig, CONFIG_NAME, overrides)
