# Log publishing benchmark: the file tailer and the task-log handler vs a plain confluent-kafka Producer.
.PHONY: bench-streams
bench-streams: services-up
	$(WITH_ENV) python bench/streams_bench.py
