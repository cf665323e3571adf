"""Print what the demo moved where: object counts and sizes per bucket on both S3 endpoints."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from datamover.hooks.s3 import ObjectStoreHook
from datamover.settings_loader import connections_env


def main() -> None:
    for key, value in connections_env(Path(__file__).resolve().parents[2] / "airflow_settings.yaml").items():
        os.environ.setdefault(key, value)
    for conn_id, label in (("aws_default", "AWS S3 (moto)"), ("egress_output", "Ceph RGW")):
        client = ObjectStoreHook(conn_id).client(retries=1)
        print(f"{label} via connection {conn_id!r}:")
        buckets = client.list_buckets()["Buckets"]
        if not buckets:
            print("  (no buckets)")
        for bucket in buckets:
            folders: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                for obj in page.get("Contents", []):
                    folder = obj["Key"].rsplit("/", 1)[0] if "/" in obj["Key"] else ""
                    folders[folder][0] += 1
                    folders[folder][1] += obj["Size"]
            for folder, (count, size) in sorted(folders.items())[:20]:
                print(f"  s3://{bucket['Name']}/{folder}: {count} object(s), {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
