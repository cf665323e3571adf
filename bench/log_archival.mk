# log_archival benchmarks: (a) collector vs psql \copy, (b) archival vs aws s3 cp, (c) encoding vs logdogref.
.PHONY: bench-logdog
bench-logdog: services-up
	$(WITH_ENV) python bench/log_archival_bench.py

bench: bench-logdog
