"""Demo data for egress_dump: the seed's two tables in schema `egress_demo`, idempotent.

    python -m tests.support.egress_seed            # DSN from DATAMOVER_PG_DSN or the PG* variables

Rows are generated relative to today's date (UTC), so reseeding on the same day gives the same
content, and the incremental table always has rows in yesterday's interval.
"""

from __future__ import annotations

import os

import psycopg

SCHEMA = "egress_demo"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.tally_snapshots (
    id              bigint PRIMARY KEY,
    account_number  text NOT NULL,
    product         text NOT NULL,
    cores           integer,
    sockets         integer,
    snapshot_date   date NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.subscription_capacity (
    id                   bigint PRIMARY KEY,
    org_id               text NOT NULL,
    product_id           text NOT NULL,
    sku                  text NOT NULL,
    cores                integer,
    has_unlimited_usage  boolean NOT NULL,
    begin_date           timestamptz NOT NULL,
    end_date             timestamptz,
    updated_at           timestamptz NOT NULL
);
"""

# 3 days of snapshots every 90 s, ending around today's midnight (UTC).
FILL = f"""
TRUNCATE {SCHEMA}.tally_snapshots, {SCHEMA}.subscription_capacity;
INSERT INTO {SCHEMA}.tally_snapshots
SELECT g, 'acct-' || lpad((g % 97)::text, 6, '0'),
       (ARRAY['RHEL', 'OpenShift', 'Satellite', 'Ansible'])[1 + g % 4],
       CASE WHEN g % 11 = 0 THEN NULL ELSE 2 + g % 64 END, 1 + g % 4,
       ((date_trunc('day', now() AT TIME ZONE 'UTC') - interval '3 days') + g * interval '90 seconds')::date,
       (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') - interval '3 days'
           + g * interval '90 seconds'
FROM generate_series(1, 2900) AS g;
INSERT INTO {SCHEMA}.subscription_capacity
SELECT g, 'org-' || (g % 13), 'prod-' || (g % 7), 'SKU' || lpad(g::text, 5, '0'),
       CASE WHEN g % 5 = 0 THEN NULL ELSE 16 * (1 + g % 8) END, g % 9 = 0,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '1 day',
       CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2027-01-01 00:00:00+00' + g * interval '1 day' END,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour'
FROM generate_series(1, 250) AS g;
"""


def seed(dsn: str | None = None) -> dict[str, int]:
    with psycopg.connect(dsn if dsn is not None else os.environ.get("DATAMOVER_PG_DSN", "")) as conn:
        conn.execute(DDL)
        conn.execute(FILL)
        return {
            table: conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()[0]
            for table in ("tally_snapshots", "subscription_capacity")
        }


def main() -> None:
    for table, rows in seed().items():
        print(f"seeded {SCHEMA}.{table}: {rows} rows")


if __name__ == "__main__":
    main()
