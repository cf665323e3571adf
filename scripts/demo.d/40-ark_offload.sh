# Ark Log offload: sample logs (plus non-Ark junk the scan must ignore) -> S3 (moto), then the catalog.
# Idempotent: the generator keeps valid logs; a rerun skips objects already verified in S3.
ark_dir="${DATAMOVER_STATE_DIR:?}/demo/ark_logs"
python -m datamover.ark.sample "$ark_dir"
# create_bucket: the real bucket exists already; locally the demo creates ark-logs-rhq on moto.
run_dag ark_offload "" "{\"storage_base_path\": \"$ark_dir\", \"create_bucket\": true}"
run_dag catalog_ingest
