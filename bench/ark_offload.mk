# Ark Log offload benchmark: engine vs aws s3 cp vs s5cmd, on a private moto and on Ceph RGW (installs
# awscli in .state/tools).
.PHONY: bench-offload
bench-offload: services-up
	$(WITH_ENV) python bench/ark_offload_bench.py
