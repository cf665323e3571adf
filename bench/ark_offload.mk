# Ark Log offload benchmark: engine vs aws s3 cp vs s5cmd on the moto endpoint (installs awscli in .state/tools).
.PHONY: bench-offload
bench-offload: fresh-moto
	$(WITH_ENV) python bench/ark_offload_bench.py
