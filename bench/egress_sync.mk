# egress_sync benchmark: mirror engine vs rclone sync and s5cmd, moto S3 -> Ceph RGW (bench/egress_sync_bench.py).
.PHONY: bench-sync
bench-sync: services-up
	@command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone; }
	$(WITH_ENV) python bench/egress_sync_bench.py
