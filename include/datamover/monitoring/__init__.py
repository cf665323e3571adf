"""Transfer monitoring (the seed's Data Transfer Monitoring): pure logic, no Airflow imports.

timescale   TAI <-> UTC with a fixed offset, the observing-day label
keys        the camera bucket's key layout (prefix per exposure, expected object names)
messages    parsers for the Ceph/S3 bucket notification JSON and the End Readout JSON
expected    the expected-sensors file -> the exposure's expected object keys
evaluation  per-exposure result (found, missing, late, transfer time) from arrival times
metrics     the original's Prometheus metrics, computed from per-day totals
config      the pydantic model of include/config/transfer_monitoring.yaml
store       PostgreSQL tables and queries (the durable state every metric is derived from)
ingest      Kafka batches -> PostgreSQL, offsets stored in the same transaction
evaluator   one evaluation pass over the exposures whose wait window closed (or that are complete)
publish     per-day metric values recomputed from the store, pushed to the Pushgateway
"""
