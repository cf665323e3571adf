"""Mirror one S3 path to another S3-compatible service (`mc mirror` / `rclone sync` semantics).

Pure logic, no Airflow: `listing` (paginated, sorted listings relative to a path), `plan` (merge-join
diff, change detection, key-range shards), `engine` (streamed parallel transfer with verification).
"""
