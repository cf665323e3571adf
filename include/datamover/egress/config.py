"""`EgressDumpConfig`: the validated shape of include/config/egress_dump.yaml, one pydantic model for the
file and for the trigger form's overrides of a run.

source: {postgres_conn_id: egress_postgres, session_timezone: UTC}
destination: {s3_conn_id: aws_default, bucket: egress-dumps, prefix: daily}
bucket_rules: {enforce: true, create_missing: true, lifecycle_days: 14}
dump: {compression_level: 1, part_size_mib: 8, upload_workers: 4,
       allow_snapshot_backfill: false, snapshot_max_lag_hours: 24}
tables:
  - name: tally_snapshots       # object <prefix>/<YYYY-MM-DD>/<name>.csv.gz
    schema: public
    mode: incremental           # snapshot (whole table) | incremental (timestamp_column in the interval)
    timestamp_column: updated_at
    columns: [id, ...]          # optional: default all, in table order
    hash_columns: [email]       # optional: exported as hex sha256 of the text value (NULL stays NULL)
    order_by: [id]              # optional: a stable row order (costs a sort or an index scan)
    header: true                # first CSV line holds the column names
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from datamover.config import BucketName, ConfigModel, KeyPrefix, load_config, tri_state
from datamover.errors import ConfigError
from datamover.s3 import MIN_PART_SIZE
from datamover.units import MIB

CONFIG_NAME = "egress_dump"
# PostgreSQL identifiers are quoted when used, so any text is safe; this only refuses what cannot be a
# name (empty, NUL, > 63 bytes). Table names also become object keys, hence the stricter pattern.
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _identifier(value: str) -> str:
    if not value or "\x00" in value or len(value.encode()) > 63:
        raise ValueError("is not a PostgreSQL identifier (1-63 bytes, no NUL)")
    return value


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists a column twice")
    return values


Identifier = Annotated[str, AfterValidator(_identifier)]
Columns = Annotated[list[Identifier], AfterValidator(_unique)]


class TableSpec(ConfigModel):
    """One table to dump. `columns` None means every column in table order."""

    name: Identifier
    schema_name: Identifier = Field("public", alias="schema")
    mode: Literal["snapshot", "incremental"] = "snapshot"
    timestamp_column: Identifier | None = None
    columns: Columns | None = None
    hash_columns: Columns = Field(default_factory=list)
    order_by: Columns = Field(default_factory=list)
    header: bool = True

    model_config = {**ConfigModel.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        if self.mode == "incremental" and not self.timestamp_column:
            raise ValueError(
                "mode 'incremental' needs 'timestamp_column' (the column whose value places a row in a "
                "day), or use mode 'snapshot'"
            )
        if self.mode == "snapshot" and self.timestamp_column:
            raise ValueError("'timestamp_column' is only used by mode 'incremental'; remove it or set it")
        if self.columns is not None and not self.columns:
            raise ValueError("'columns' is empty; list at least one column or remove the key")
        if self.columns is not None and (missing := [c for c in self.hash_columns if c not in self.columns]):
            raise ValueError(f"hash_columns {missing} are not in 'columns'; add them there or drop them")
        if not _OBJECT_NAME.match(self.name):
            raise ValueError(
                f"table name {self.name!r} would make a bad object key; use letters, digits, '_', '.', '-'"
            )
        return self

    @property
    def schema(self) -> str:  # type: ignore[override]  # the YAML key; BaseModel.schema is deprecated
        return self.schema_name

    @property
    def relation(self) -> str:
        """`schema.name` for messages (not SQL: SQL always quotes each part)."""
        return f"{self.schema_name}.{self.name}"

    @property
    def object_name(self) -> str:
        return f"{self.name}.csv.gz"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form with the YAML's keys, for XCom and mapped task kwargs."""
        return self.model_dump(by_alias=True)


class Source(ConfigModel):
    postgres_conn_id: str = "egress_postgres"
    session_timezone: str = "UTC"  # timestamptz values are written in this zone


class Destination(ConfigModel):
    s3_conn_id: str = "aws_default"
    bucket: BucketName
    prefix: KeyPrefix = ""


class BucketRulesConfig(ConfigModel):
    enforce: bool = True  # fail the run when encryption or lifecycle is missing
    create_missing: bool = True
    lifecycle_days: int = Field(14, ge=1, le=3650)


class DumpTuning(ConfigModel):
    compression_level: int = Field(1, ge=0, le=3)
    part_size_mib: int = Field(8, ge=MIN_PART_SIZE // MIB, le=64)
    upload_workers: int = Field(4, ge=1, le=16)
    allow_snapshot_backfill: bool = False
    snapshot_max_lag_hours: int = Field(24, ge=1, le=24 * 366)


class EgressDumpConfig(ConfigModel):
    source: Source = Field(default_factory=Source)
    destination: Destination
    bucket_rules: BucketRulesConfig = Field(default_factory=BucketRulesConfig)
    dump: DumpTuning = Field(default_factory=DumpTuning)
    tables: list[TableSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tables(self) -> EgressDumpConfig:
        names = [t.name for t in self.tables]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"table name(s) {dupes} appear twice; each table writes <name>.csv.gz")
        return self

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def day_prefix(self, day: str) -> str:
        return "/".join(p for p in (self.destination.prefix, day) if p)

    def object_key(self, day: str, table: TableSpec) -> str:
        return f"{self.day_prefix(day)}/{table.object_name}"

    def manifest_key(self, day: str) -> str:
        return f"{self.day_prefix(day)}/_manifest.json"

    def select(
        self, wanted: Sequence[str] | None, where: str = "include/config/egress_dump.yaml"
    ) -> EgressDumpConfig:
        """Only the tables named in `wanted` (None or empty = all), in config order."""
        if not wanted:
            return self
        unknown = [t for t in dict.fromkeys(wanted) if t not in self.table_names]
        if unknown:
            raise ConfigError(
                f"DAG param 'tables': {', '.join(map(repr, unknown))} not in {where}; choose from "
                f"{', '.join(self.table_names)}, or add the table to the config."
            )
        return self.model_copy(update={"tables": [t for t in self.tables if t.name in wanted]})


# Trigger-form params -> the YAML keys they override (None/"" keeps the file's value).
PARAM_OVERRIDES = {
    "bucket": "destination.bucket",
    "prefix": "destination.prefix",
    "s3_conn_id": "destination.s3_conn_id",
    "postgres_conn_id": "source.postgres_conn_id",
    "compression_level": "dump.compression_level",
    "allow_snapshot_backfill": "dump.allow_snapshot_backfill",
    "enforce_bucket_rules": "bucket_rules.enforce",
}


def config_for_run(params: Mapping[str, Any]) -> EgressDumpConfig:
    """The config with this run's trigger-form values applied and validated by the same model."""
    overrides = {path: params.get(param) for param, path in PARAM_OVERRIDES.items()}
    for switch in ("allow_snapshot_backfill", "enforce_bucket_rules"):
        overrides[PARAM_OVERRIDES[switch]] = tri_state(params.get(switch), switch)
    return load_config(EgressDumpConfig, CONFIG_NAME, overrides).select(params.get("tables"))
