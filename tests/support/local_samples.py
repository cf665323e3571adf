"""Sample data for the local setup (`make sample-data`, run by `make demo` and `make standalone`), idempotent:
the egress demo tables in PostgreSQL, sample Ark Logs (and non-Ark junk) in the configured
storage_base_path, and the configured Ark bucket on the local S3 stand-in. Never part of the runtime
package: a real deployment has its own data, and the bucket exists there already."""

from __future__ import annotations

import os
from pathlib import Path

from datamover.ark.config import config_for_run
from datamover.hooks.s3 import ObjectStoreHook
from datamover.s3 import create_bucket
from datamover.settings_loader import connections_env
from tests.support.ark_demo import generate_demo
from tests.support.egress_seed import seed

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    for key, value in connections_env(ROOT / "airflow_settings.yaml").items():
        os.environ.setdefault(key, value)
    seed(os.environ["DATAMOVER_PG_DSN"])
    config = config_for_run()
    names = generate_demo(config.storage)
    created = create_bucket(ObjectStoreHook(config.aws_conn_id).client(), config.destination_bucket)
    print(
        f"egress demo tables seeded; {len(names)} sample Ark Logs (+ junk) in {config.storage}; "
        f"bucket {config.destination_bucket} {'created' if created else 'present'} on {config.aws_conn_id}"
    )


if __name__ == "__main__":
    main()
