"""SQL for one table dump, composed with psycopg.sql: every name is a quoted Identifier and every
value a Literal, so no table or column name can change the statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from datamover.egress.config import TableSpec
from datamover.errors import ConfigError, UnknownSourceError

# Types a timestamp column may have for mode incremental.
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")

# The relation and its live columns in order; relkind r/p/v/m/f = table, partitioned, view, matview, foreign.
COLUMNS_QUERY = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    hashed: bool = False

    def to_dict(self) -> dict[str, object]:
        if self.hashed:  # the exported value is the hex sha256 of the text form
            return {"name": self.name, "type": "text", "hashed": "sha256", "source_type": self.type}
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class Interval:
    """Half-open [start, end): a row belongs to the day when start <= ts < end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError(f"Interval {self.start} .. {self.end} needs time zones (aware datetimes).")
        if not self.start < self.end:
            raise ConfigError(
                f"Interval start {self.start.isoformat()} is not before its end "
                f"{self.end.isoformat()}: an incremental dump needs a non-empty data interval."
            )


def select_columns(spec: TableSpec, table_columns: list[tuple[str, str]], source: str) -> list[Column]:
    """Check the configured columns against the real ones; return what will be exported, in order.
    Raises SourceError naming the unknown table or column."""
    if not table_columns:
        raise UnknownSourceError(
            f"Table '{spec.name}': relation {spec.relation} does not exist (or has no columns) "
            f"in {source}. Fix: create it, or correct name/schema in the egress_dump config."
        )
    types = dict(table_columns)
    wanted = list(spec.columns) if spec.columns is not None else [name for name, _ in table_columns]
    referenced = [*wanted, *spec.hash_columns, *spec.order_by]
    if spec.timestamp_column:
        referenced.append(spec.timestamp_column)
    unknown = [c for c in dict.fromkeys(referenced) if c not in types]
    if unknown:
        raise UnknownSourceError(
            f"Table '{spec.name}': column(s) {', '.join(map(repr, unknown))} do not exist in "
            f"{spec.relation} ({source}); its columns are {', '.join(types)}. Fix the "
            "egress_dump config (columns, hash_columns, order_by, timestamp_column)."
        )
    if spec.timestamp_column and types[spec.timestamp_column] not in TIME_TYPES:
        raise UnknownSourceError(
            f"Table '{spec.name}': timestamp_column {spec.timestamp_column!r} has type "
            f"{types[spec.timestamp_column]}, not a timestamp or date; choose another column "
            "or use mode snapshot."
        )
    hashed = set(spec.hash_columns)
    if stray := sorted(hashed - set(wanted)):
        raise UnknownSourceError(
            f"Table '{spec.name}': hash_columns {stray} are not exported; add them to columns."
        )
    return [Column(c, types[c], c in hashed) for c in wanted]


def build_select(spec: TableSpec, columns: list[Column], interval: Interval | None) -> sql.Composed:
    """SELECT of the exported columns; incremental tables get start <= ts < end."""
    items = []
    for col in columns:
        ident = sql.Identifier(col.name)
        if col.hashed:
            # hex sha256 of the text form; NULL stays NULL so "unknown" stays distinguishable
            items.append(
                sql.SQL("encode(sha256(convert_to({}::text, 'UTF8')), 'hex') AS {}").format(ident, ident)
            )
        else:
            items.append(ident)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(items), sql.Identifier(spec.schema, spec.name)
    )
    if spec.mode == "incremental":
        if interval is None:
            raise ConfigError(f"Table '{spec.name}': mode incremental needs the run's data interval.")
        ts = sql.Identifier(spec.timestamp_column or "")
        query += sql.SQL(" WHERE {} >= {} AND {} < {}").format(
            ts, sql.Literal(interval.start), ts, sql.Literal(interval.end)
        )
    if spec.order_by:
        query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, spec.order_by)))
    return query


def build_copy(select: sql.Composable, header: bool) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER {})").format(
        select, sql.SQL("true" if header else "false")
    )
