# Ark Log offload: the sample logs (plus non-Ark junk the scan must ignore) that `make sample-data` put in
# the configured storage_base_path -> S3 (moto), then the catalog. Idempotent: a rerun finds every log
# verified in S3 already and sends nothing.
run_dag ark_offload
run_dag catalog_ingest
