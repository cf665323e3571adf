# egress_sync on the CeleryExecutor, 1 vs 2 workers (bench/celery_bench.py); needs the Redis broker.
.PHONY: bench-celery
bench-celery: services-up
	$(WITH_ENV) python bench/celery_bench.py
