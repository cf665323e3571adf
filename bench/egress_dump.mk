# egress_dump benchmark: the operator's pipeline vs the seed's `psql \copy | gzip | aws s3 cp -`.
.PHONY: bench-dump
bench-dump: services-up
	$(WITH_ENV) python bench/egress_dump_bench.py
