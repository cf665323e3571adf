# transfer_monitoring benchmark: the DAGs on a real Airflow (api-server, scheduler, dag-processor,
# triggerer) at 10x Rubin's rate for 10 minutes, per-exposure DAG runs side by side, and a 1,000-exposure
# backlog caught up (bench/transfer_monitoring_bench.py). Override: BENCH_MONITORING_ARGS="--minutes 2".
.PHONY: bench-monitoring
bench-monitoring: services-up
	$(WITH_ENV) python bench/transfer_monitoring_bench.py $(BENCH_MONITORING_ARGS)
