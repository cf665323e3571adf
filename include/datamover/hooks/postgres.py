"""PostgreSQL through the postgres provider's hook (psycopg 3): its connection handling, extras (sslmode,
...) and RDS IAM authentication (extra `iam: true`, with `aws_conn_id`) serve our COPY streaming too."""

from __future__ import annotations

from typing import Any

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook as ProviderPostgresHook

from datamover.hooks.base import CheckedConnection


class PostgresHook(CheckedConnection, ProviderPostgresHook):
    """`connect()` gives a psycopg 3 connection (COPY streaming needs psycopg's `cursor.copy`)."""

    default_conn_name = "egress_postgres"

    def __init__(self, postgres_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    def _create_connection(self, conn_args: dict[str, Any]) -> Any:
        # A dead host must not hang a worker slot; extras may still set their own values.
        conn_args.setdefault("connect_timeout", 10)
        conn_args.setdefault("application_name", "datamover")
        return super()._create_connection(conn_args)

    def connect(self) -> psycopg.Connection:
        self.require_connection()
        conn = self.get_conn()
        if not isinstance(conn, psycopg.Connection):  # psycopg2 would lack cursor.copy()
            raise TypeError("the postgres provider returned a psycopg2 connection; install psycopg 3")
        return conn

    def describe(self) -> str:
        """Host/port/database without credentials, for logs and manifests."""
        c = self.require_connection()
        return f"postgresql://{c.host or 'localhost'}:{c.port or 5432}/{self.database or c.schema or ''}"

    def check(self) -> str:
        try:
            with self.connect() as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            refused = "password authentication failed" in reason or "no pg_hba.conf entry" in reason
            raise self.failure(
                f"cannot reach PostgreSQL at {self.describe()}: {reason}",
                "check host, port, database, login and password in the connection, "
                "and that the server accepts connections from this worker",
                permanent=refused,
            ) from None
        return f"PostgreSQL {version} at {self.describe()}"
