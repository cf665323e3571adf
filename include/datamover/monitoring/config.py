"""The model of include/config/transfer_monitoring.yaml (also validates the DAGs' trigger-form overrides)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from datamover.config import ConfigModel, load_config
from datamover.monitoring.metrics import DEFAULT_BUCKETS
from datamover.monitoring.timescale import TAI_MINUS_UTC_S

CONFIG_NAME = "transfer_monitoring"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class KafkaSource(ConfigModel):
    kafka_connection: str = Field(min_length=1)
    topic: str

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.fullmatch(value):
            raise ValueError("a Kafka topic name: letters, digits, '.', '_' or '-', at most 249")
        return value


class ObjectStore(ConfigModel):
    connection: str = Field(min_length=1)  # an `aws` connection to the Ceph RGW
    bucket: str = Field(min_length=3, max_length=63)
    # End Readout `imageSource` -> the first folder of the exposure's keys.
    instruments: dict[str, str] = Field(min_length=1)


class Postgres(ConfigModel):
    connection: str = Field(min_length=1)
    schema_name: str = Field(alias="schema")

    @field_validator("schema_name")
    @classmethod
    def _schema(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("a lower-case SQL identifier (letters, digits, '_'; at most 63)")
        return value


class Timing(ConfigModel):
    s3_wait_time_s: PositiveSeconds = 30.0  # the original's S3_WAIT_TIME
    max_file_late_time_s: PositiveSeconds = 10.0  # the original's MAX_FILE_LATE_TIME (production value)
    notification_slack_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    tai_minus_utc_s: float = TAI_MINUS_UTC_S

    @model_validator(mode="after")
    def _late_within_window(self) -> Timing:
        if self.max_file_late_time_s > self.s3_wait_time_s:
            raise ValueError(
                f"max_file_late_time_s ({self.max_file_late_time_s:g}) is longer than s3_wait_time_s "
                f"({self.s3_wait_time_s:g}): raise s3_wait_time_s or lower the threshold"
            )
        return self


class Metrics(ConfigModel):
    pushgateway_connection: str = Field(min_length=1)
    job: str = Field(min_length=1)
    app: str = Field(min_length=1)  # the `app` label the dashboard's queries group by
    transfer_time_buckets: list[float] = Field(default_factory=lambda: list(DEFAULT_BUCKETS), min_length=1)
    push_interval_s: PositiveSeconds = 5.0

    @field_validator("transfer_time_buckets")
    @classmethod
    def _buckets(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(b) or b <= 0 for b in value) or value != sorted(set(value)):
            raise ValueError("strictly increasing positive numbers of seconds (no +Inf: it is implied)")
        return value


class Ingest(ConfigModel):
    run_minutes: PositiveSeconds = 10.0  # one ingest task consumes this long; the next run continues
    batch_max_messages: int = Field(default=5000, ge=1, le=100_000)
    batch_max_seconds: PositiveSeconds = 1.0
    fetch_workers: int = Field(default=8, ge=1, le=64)  # expected-sensors file downloads in parallel


class Evaluation(ConfigModel):
    max_exposures: int = Field(default=2000, ge=1)  # per evaluation pass
    list_prefix: bool = True  # reconcile with an S3 listing (objects whose notification was lost)
    list_workers: int = Field(default=8, ge=1, le=64)
    poke_interval_s: PositiveSeconds = 1.0  # how often the trigger asks PostgreSQL
    max_wait_minutes: PositiveSeconds = 10.0  # the sensor gives up (and the next run waits again)
    linger_s: Annotated[float, Field(ge=0, le=600)] = 20.0  # keep evaluating while work keeps coming
    max_run_minutes: PositiveSeconds = 5.0  # one evaluate task at most this long


class TransferMonitoringConfig(ConfigModel):
    file_notifications: KafkaSource
    end_readouts: KafkaSource
    consumer_group: str = Field(min_length=1)
    object_store: ObjectStore
    postgres: Postgres
    timing: Timing = Timing()
    metrics: Metrics
    ingest: Ingest = Ingest()
    evaluation: Evaluation = Evaluation()


def load(overrides: dict[str, object] | None = None) -> TransferMonitoringConfig:
    return load_config(TransferMonitoringConfig, CONFIG_NAME, overrides=overrides)
