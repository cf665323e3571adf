# The S3 client library A/B: boto3 through ObjectStoreHook vs obstore from the same connection.
.PHONY: bench-ab
bench-ab: services-up
	$(WITH_ENV) python bench/client_ab_bench.py
