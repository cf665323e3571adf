"""PostgreSQL over psycopg 3, for COPY streaming and plain queries."""

from __future__ import annotations

from typing import Any

import psycopg

from datamover.hooks.base import DataMoverHook


class PostgresHook(DataMoverHook):
    """psycopg 3 connections from an Airflow `postgres` connection (extra: sslmode, options, ...)."""

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "egress_postgres"
    conn_type = "postgres"
    hook_name = "PostgreSQL (psycopg 3)"

    def connect_kwargs(self) -> dict[str, Any]:
        c = self.connection
        kwargs: dict[str, Any] = {
            "host": c.host or "localhost",
            "port": int(c.port or 5432),
            "user": c.login,
            "password": c.password,
            "dbname": c.schema or c.login,
            "application_name": "datamover",
            "connect_timeout": 10,
        }
        extra = c.extra_dejson or {}
        for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options", "target_session_attrs"):
            if key in extra:
                kwargs[key] = extra[key]
        return {k: v for k, v in kwargs.items() if v is not None}

    def describe(self) -> str:
        """Host/port/database without credentials, for logs and manifests."""
        kw = self.connect_kwargs()
        return f"postgresql://{kw['host']}:{kw['port']}/{kw.get('dbname', '')}"

    def connect(self, **overrides: Any) -> psycopg.Connection:
        return psycopg.connect(**{**self.connect_kwargs(), **overrides})

    def check(self) -> str:
        try:
            with self.connect() as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self.failure(
                f"cannot reach PostgreSQL at {self.describe()}: {reason}",
                "check host, port, database, login and password in the connection, "
                "and that the server accepts connections from this worker",
            ) from None
        return f"PostgreSQL {version} at {self.describe()}"
