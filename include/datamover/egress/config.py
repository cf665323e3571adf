"""`EgressDumpConfig`: the validated shape of include/config/egress_dump.yaml, plus per-run overrides.

schedule: "0 0 * * *"          # cron (UTC); each run dumps the day [interval start, interval end)
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from datamover.config import CONFIG_DIR, FieldSpec, load_yaml, read_fields
from datamover.errors import ConfigError

DEFAULT_CONFIG = CONFIG_DIR / "egress_dump.yaml"

MODES = ("snapshot", "incremental")
# S3 refuses multipart parts below 5 MiB (except the last); above 64 MiB memory use grows for no gain.
MIN_PART_MIB, MAX_PART_MIB = 5, 64

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")
# PostgreSQL identifiers are quoted when used, so any text is safe; this only refuses what cannot be a
# name (empty, NUL, > 63 bytes) and names that would make a bad object key.
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _check_identifier(value: str) -> str | None:
    if not value or "\x00" in value or len(value.encode()) > 63:
        return "is not a PostgreSQL identifier (1-63 bytes, no NUL)"
    return None


def _check_identifiers(values: list[Any]) -> str | None:
    for v in values:
        if not isinstance(v, str) or _check_identifier(v):
            return f"has {v!r}, which is not a column name (a string of 1-63 bytes)"
    if len(set(values)) != len(values):
        return "lists a column twice"
    return None


def _check_bucket(value: str) -> str | None:
    if _BUCKET.match(value) and ".." not in value:
        return None
    return "is not a valid S3 bucket name (3-63 characters: lowercase letters, digits, '.', '-')"


def _check_prefix(value: str) -> str | None:
    if value.startswith("/") or "//" in value or value.endswith("/"):
        return "must be a key prefix without leading, trailing or double slashes (e.g. 'daily')"
    return None


def _check_schedule(value: str) -> str | None:
    if value.startswith("@"):
        return (
            None
            if value in ("@daily", "@hourly", "@weekly", "@monthly")
            else ("is not one of @daily, @hourly, @weekly, @monthly or a 5-field cron expression")
        )
    parts = value.split()
    if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
        return 'is not a 5-field cron expression (e.g. "0 0 * * *")'
    return None


def _range(lo: int, hi: int) -> Any:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


TABLE_FIELDS = [
    FieldSpec("name", str, check=_check_identifier, help="the table (or view) name"),
    FieldSpec("schema", str, default="public", check=_check_identifier),
    FieldSpec(
        "mode",
        str,
        default="snapshot",
        check=lambda v: None if v in MODES else f"must be one of {', '.join(MODES)}",
    ),
    FieldSpec("timestamp_column", str, default=None, check=_check_identifier),
    FieldSpec("columns", list, default=None, check=_check_identifiers),
    FieldSpec("hash_columns", list, default=(), check=_check_identifiers),
    FieldSpec("order_by", list, default=(), check=_check_identifiers),
    FieldSpec("header", bool, default=True),
]

SECTIONS: dict[str, list[FieldSpec]] = {
    "source": [
        FieldSpec("postgres_conn_id", str, default="egress_postgres"),
        FieldSpec(
            "session_timezone", str, default="UTC", help="timestamptz values are written in this time zone"
        ),
    ],
    "destination": [
        FieldSpec("s3_conn_id", str, default="aws_default"),
        FieldSpec("bucket", str, check=_check_bucket, help="the dedicated dump bucket"),
        FieldSpec("prefix", str, default="", check=_check_prefix),
    ],
    "bucket_rules": [
        FieldSpec("enforce", bool, default=True, help="fail the run when encryption or lifecycle is missing"),
        FieldSpec("create_missing", bool, default=True),
        FieldSpec("lifecycle_days", int, default=14, check=_range(1, 3650)),
    ],
    "dump": [
        FieldSpec("compression_level", int, default=1, check=_range(0, 3)),
        FieldSpec("part_size_mib", int, default=8, check=_range(MIN_PART_MIB, MAX_PART_MIB)),
        FieldSpec("upload_workers", int, default=4, check=_range(1, 16)),
        FieldSpec("allow_snapshot_backfill", bool, default=False),
        FieldSpec("snapshot_max_lag_hours", int, default=24, check=_range(1, 24 * 366)),
    ],
}


@dataclass(frozen=True)
class TableSpec:
    """One table to dump. `columns` None means every column in table order."""

    name: str
    schema: str = "public"
    mode: str = "snapshot"
    timestamp_column: str | None = None
    columns: tuple[str, ...] | None = None
    hash_columns: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    header: bool = True

    @property
    def relation(self) -> str:
        """`schema.name` for messages (not SQL: SQL always quotes each part)."""
        return f"{self.schema}.{self.name}"

    @property
    def object_name(self) -> str:
        return f"{self.name}.csv.gz"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for XCom and mapped task kwargs."""
        d = asdict(self)
        for k in ("columns", "hash_columns", "order_by"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "table") -> TableSpec:
        values = read_fields(data, TABLE_FIELDS, where)
        if values["mode"] == "incremental" and not values["timestamp_column"]:
            raise ConfigError(
                f"{where}: mode 'incremental' needs 'timestamp_column' (the column whose value "
                "places a row in a day), or use mode 'snapshot'."
            )
        if values["mode"] == "snapshot" and values["timestamp_column"]:
            raise ConfigError(
                f"{where}: 'timestamp_column' is only used by mode 'incremental'; remove it or "
                "set mode: incremental."
            )
        columns = tuple(values["columns"]) if values["columns"] is not None else None
        if columns is not None and not columns:
            raise ConfigError(f"{where}: 'columns' is empty; list at least one column or remove the key.")
        hashed = tuple(values["hash_columns"] or ())
        if columns is not None and (missing := [c for c in hashed if c not in columns]):
            raise ConfigError(
                f"{where}: hash_columns {missing} are not in 'columns'; add them there or drop "
                "them from hash_columns."
            )
        if not _OBJECT_NAME.match(values["name"]):
            raise ConfigError(
                f"{where}: table name {values['name']!r} would make a bad object key; use a "
                "name of letters, digits, '_', '.', '-'."
            )
        return cls(
            name=values["name"],
            schema=values["schema"],
            mode=values["mode"],
            timestamp_column=values["timestamp_column"],
            columns=columns,
            hash_columns=hashed,
            order_by=tuple(values["order_by"] or ()),
            header=values["header"],
        )


@dataclass(frozen=True)
class EgressDumpConfig:
    tables: tuple[TableSpec, ...]
    bucket: str
    prefix: str = ""
    schedule: str = "0 0 * * *"
    postgres_conn_id: str = "egress_postgres"
    session_timezone: str = "UTC"
    s3_conn_id: str = "aws_default"
    enforce_bucket_rules: bool = True
    create_missing_bucket: bool = True
    lifecycle_days: int = 14
    compression_level: int = 1
    part_size_mib: int = 8
    upload_workers: int = 4
    allow_snapshot_backfill: bool = False
    snapshot_max_lag_hours: int = 24
    source: str = field(default="", compare=False)  # the file it came from, for messages

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def day_prefix(self, day: str) -> str:
        return "/".join(p for p in (self.prefix, day) if p)

    def object_key(self, day: str, table: TableSpec) -> str:
        return f"{self.day_prefix(day)}/{table.object_name}"

    def manifest_key(self, day: str) -> str:
        return f"{self.day_prefix(day)}/_manifest.json"

    def with_overrides(self, overrides: Mapping[str, Any]) -> EgressDumpConfig:
        """Apply DAG params from the trigger form; None (or an empty list) means "keep the config value"."""
        where = "DAG params"
        changes: dict[str, Any] = {}
        selected = overrides.get("tables")
        if selected:
            if isinstance(selected, str):
                selected = selected.replace(",", " ").split()
            unknown = [t for t in selected if t not in self.table_names]
            if unknown:
                raise ConfigError(
                    f"{where}: table(s) {', '.join(map(repr, unknown))} are not in the config "
                    f"{self.source or 'egress_dump.yaml'}; choose from {', '.join(self.table_names)}"
                    " or add them to the config."
                )
            changes["tables"] = tuple(t for t in self.tables if t.name in selected)
        simple = {
            "bucket": (str, _check_bucket),
            "prefix": (str, _check_prefix),
            "postgres_conn_id": (str, None),
            "s3_conn_id": (str, None),
            "compression_level": (int, _range(0, 3)),
            "allow_snapshot_backfill": (bool, None),
            "enforce_bucket_rules": (bool, None),
        }
        for key, (kind, check) in simple.items():
            value = overrides.get(key)
            if value is None or value == "":
                continue
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}.")
            if check is not None and (problem := check(value)):
                raise ConfigError(f"{where}: {key!r} = {value!r} {problem}.")
            changes[key] = value
        return replace(self, **changes)


def parse_config(data: Any, where: str) -> EgressDumpConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'destination' and 'tables'.")
    allowed = {"schedule", "tables", *SECTIONS}
    if unknown := sorted(set(data) - allowed):
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed keys are {', '.join(sorted(allowed))}."
        )
    schedule = data.get("schedule", "0 0 * * *")
    if not isinstance(schedule, str) or (problem := _check_schedule(schedule)):
        raise ConfigError(
            f"{where}: key 'schedule' = {schedule!r} "
            f"{problem if isinstance(schedule, str) else 'must be a string'}."
        )
    sections = {
        name: read_fields(data.get(name), specs, f"{where} [{name}]") for name, specs in SECTIONS.items()
    }
    if "destination" not in data:
        raise ConfigError(f"{where}: section 'destination' with at least 'bucket' is required.")
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, list) or not raw_tables:
        raise ConfigError(f"{where}: 'tables' must be a non-empty list of tables to dump.")
    tables = tuple(TableSpec.from_dict(t, f"{where} [tables][{i}]") for i, t in enumerate(raw_tables))
    names = [t.name for t in tables]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(
            f"{where}: table name(s) {dupes} appear twice; each table writes <name>.csv.gz, "
            "so names must be unique."
        )
    src, dst, rules, dump = (sections[k] for k in ("source", "destination", "bucket_rules", "dump"))
    return EgressDumpConfig(
        tables=tables,
        bucket=dst["bucket"],
        prefix=dst["prefix"],
        schedule=schedule,
        postgres_conn_id=src["postgres_conn_id"],
        session_timezone=src["session_timezone"],
        s3_conn_id=dst["s3_conn_id"],
        enforce_bucket_rules=rules["enforce"],
        create_missing_bucket=rules["create_missing"],
        lifecycle_days=rules["lifecycle_days"],
        compression_level=dump["compression_level"],
        part_size_mib=dump["part_size_mib"],
        upload_workers=dump["upload_workers"],
        allow_snapshot_backfill=dump["allow_snapshot_backfill"],
        snapshot_max_lag_hours=dump["snapshot_max_lag_hours"],
        source=where,
    )


def load_config(path: str | Path = DEFAULT_CONFIG) -> EgressDumpConfig:
    return parse_config(load_yaml(path), str(path))


@lru_cache(maxsize=4)
def cached_config(path: str = str(DEFAULT_CONFIG)) -> EgressDumpConfig:
    """For DAG parse time: one local file read per process."""
    return load_config(path)
