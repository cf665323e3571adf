"""Log publishing throughput: the package's publishers vs a plain confluent-kafka Producer writing the
same lines, on the same Kafka, in one run (3 interleaved rounds in rotating order, best of each).

Two pairs, each with the same input:
- a log file:   plain = a Producer (librdkafka defaults) reading the file line by line, producing each
                line as is;  tailer = the FileTailer: lines parsed into records, each a validated JSON
                event of the day's log stream, sent exactly once in Kafka transactions with the file
                position.
- log calls:    plain-handler = a logging.Handler producing each formatted line with a plain Producer;
                handler = the task-log path: StreamLogHandler -> validated JSON events -> the
                never-blocking side channel (what a task's `log.info(...)` costs).

Printed: lines/s, the ratio to its plain twin (target >= 0.5x), and CPU ms per 1,000 lines (user + system
of the publishing process, all its threads; the broker's CPU is not counted).

    python bench/streams_bench.py [--lines 1000000] [--rounds 3]

(1,000,000 lines: with 200,000 the plain twin's run lasted 0.4-0.7 s and its scheduling noise, +-30%,
set the ratio more than the publishers did.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench_tools import load_env
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = os.environ.get("DATAMOVER_KAFKA_BOOTSTRAP", "127.0.0.1:59092")
MODES = ("plain", "tailer", "plain-handler", "handler")
TWIN = {"plain": "plain", "tailer": "plain", "plain-handler": "plain-handler", "handler": "plain-handler"}
FORMAT = "%(asctime)s %(levelname)s %(name)s - %(message)s"


LOGGERS = ("datamover.ark.offload", "datamover.egress.dump", "airflow.task", "botocore.credentials")
TRACE = (  # every 500th record comes with a stack trace (three lines that do not start a record)
    "Traceback (most recent call last):",
    '  File "/opt/datamover/ark/offload.py", line 212, in upload_part',
    "TimeoutError: part upload timed out after 60 s",
)


def sample_line(n: int) -> str:
    """A realistic application log line (~120 bytes): mostly INFO, some DEBUG and WARNING, loggers that
    change from line to line, and an ERROR with a stack trace every 500 lines."""
    k = n % 500
    if k >= 500 - len(TRACE):
        return TRACE[k - (500 - len(TRACE))]
    level = (
        "ERROR" if k == 499 - len(TRACE) else "WARNING" if n % 37 == 0 else "DEBUG" if n % 11 == 0 else "INFO"
    )
    return (
        f"2026-11-24 10:{n // 60000 % 60:02d}:{n // 1000 % 60:02d},{n % 1000:03d} {level} "
        f"{LOGGERS[n % len(LOGGERS)]} - part {n % 977} of log flight-{n % 13:02d} uploaded: "
        f"8388608 bytes in 0.{n % 9}1 s"
    )


def records_in(lines: int) -> int:
    """How many records (a line that starts one, with the stack trace lines after it) `lines` make."""
    return sum(1 for n in range(lines) if n % 500 < 500 - len(TRACE))


def write_file(path: Path, lines: int) -> None:
    with path.open("w") as f:
        for n in range(lines):
            f.write(sample_line(n) + "\n")


def cpu() -> float:
    t = os.times()
    return t.user + t.system


# ------------------------------------------------------------------------------------------ children


def run_plain(path: Path, topic: str, lines: int) -> dict[str, float]:
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    producer.list_topics(topic, timeout=10)  # connected before the clock starts, as the others are
    c0, t0 = cpu(), time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            while True:
                try:
                    producer.produce(topic, value=line.rstrip(b"\n"))
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
    assert producer.flush(120) == 0
    return {"seconds": time.perf_counter() - t0, "cpu": cpu() - c0}


def run_tailer(path: Path, topic: str, lines: int) -> dict[str, float]:
    from datamover.hooks.streams import file_tailer
    from datamover.streams.settings import LogFileConfig, LogPublishingConfig, TailConfig

    suffix = uuid.uuid4().hex[:8]
    config = LogPublishingConfig(
        topic=topic,
        positions_topic=f"bench.positions.{suffix}",
        files=[LogFileConfig(path=str(path), app_name="bench")],
        tail=TailConfig(poll_interval_s=0.05, lock_dir=str(path.parent)),  # (the shipped batch bounds)
    )
    tailer = file_tailer(
        config, config.files[0], f"bench-{suffix}", definitions=f"bench.definitions.{suffix}"
    )
    # started before the clock, as the plain twin is connected and knows its topic before it (list_topics):
    # transactions initialised, the committed position read, the metadata of its three topics fetched
    for name in (topic, config.positions_topic, f"bench.definitions.{suffix}"):
        tailer.store.producer.list_topics(name, timeout=10)
    tailer.store.committed(tailer.path)
    stop = threading.Event()
    thread = threading.Thread(target=tailer.run, args=(stop,), daemon=True)
    c0, t0 = cpu(), time.perf_counter()
    thread.start()
    # the last record is open until the file stays quiet for flush_after_s: all records but one is the mark
    mark = records_in(lines) - 1
    while tailer.sent_records < mark:
        time.sleep(0.01)
    seconds, used = time.perf_counter() - t0, cpu() - c0
    stop.set()
    thread.join(30)
    AdminClient({"bootstrap.servers": BOOTSTRAP}).delete_topics(
        [config.positions_topic, f"bench.definitions.{suffix}"]
    )
    return {"seconds": seconds, "cpu": used}


def _messages(lines: int) -> list[str]:
    return [sample_line(n).split(" - ", 1)[-1] for n in range(lines)]


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("datamover.bench")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


class PlainHandler(logging.Handler):
    """What one would otherwise write: each formatted record to Kafka with a plain Producer."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": BOOTSTRAP})
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.producer.produce(self.topic, value=self.format(record).encode())
        except BufferError:
            self.producer.poll(0.01)
            self.producer.produce(self.topic, value=self.format(record).encode())
        self.producer.poll(0)


def run_plain_handler(path: Path, topic: str, lines: int) -> dict[str, float]:
    handler = PlainHandler(topic)
    handler.producer.list_topics(topic, timeout=10)
    logger = _logger(handler)
    messages = _messages(lines)
    c0, t0 = cpu(), time.perf_counter()
    for message in messages:
        logger.info(message)
    assert handler.producer.flush(120) == 0
    return {"seconds": time.perf_counter() - t0, "cpu": cpu() - c0}


def run_handler(path: Path, topic: str, lines: int) -> dict[str, float]:
    from datamover.hooks.streams import StreamChannel, log_identity
    from datamover.streams.definition import stream
    from datamover.streams.logs import LogEvents, Record, StreamLogHandler
    from datamover.streams.settings import LogPublishingConfig

    suffix = uuid.uuid4().hex[:8]
    channel = StreamChannel("kafka_default", topic, definitions=f"bench.definitions.{suffix}")
    events = LogEvents(
        stream("logs"), log_identity(LogPublishingConfig(), "bench.worker"), "bench.task", "run"
    )
    # what a task's TaskLogs.publish does with each record
    handler = StreamLogHandler(lambda record: channel.publish_log(events, record, b"bench.worker"))
    # connected, definitions announced, before the clock starts (as the plain twin's list_topics)
    channel.publish_log(events, Record(int(time.time() * 1000), "INFO", "warm", "up"), b"bench.worker")
    assert channel.channel.flush(30) == 0
    logger = _logger(handler)
    messages = _messages(lines)
    c0, t0 = cpu(), time.perf_counter()
    for message in messages:
        logger.info(message)
    assert channel.channel.flush(120) == 0
    seconds, used = time.perf_counter() - t0, cpu() - c0
    assert channel.dropped == 0 and handler.failed == 0 and channel.sent == lines + 3
    channel.close()
    AdminClient({"bootstrap.servers": BOOTSTRAP}).delete_topics([f"bench.definitions.{suffix}"])
    return {"seconds": seconds, "cpu": used}


# ------------------------------------------------------------------------------------------- parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "FILE", "TOPIC", "LINES"))
    args = parser.parse_args()
    load_env()  # the services' environment and AIRFLOW_CONN_* (kafka_default) from airflow_settings.yaml
    if args.child:
        mode, file, topic, lines = args.child
        runner = {
            "plain": run_plain,
            "tailer": run_tailer,
            "plain-handler": run_plain_handler,
            "handler": run_handler,
        }[mode]
        print(json.dumps(runner(Path(file), topic, int(lines))))
        return

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    workdir = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    path = workdir / "app.log"
    write_file(path, args.lines)
    size_mb = path.stat().st_size / 1e6
    print(
        f"{args.lines:,} lines ({size_mb:.1f} MB) to Kafka at {BOOTSTRAP}, {args.rounds} rounds", flush=True
    )
    best: dict[str, dict[str, float]] = {}
    try:
        for r in range(args.rounds):
            order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
            for mode in order:
                topic = f"bench.logs.{mode}.{uuid.uuid4().hex[:8]}"
                for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                    future.result()
                try:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", mode, str(path), topic, str(args.lines)],
                        capture_output=True,
                        text=True,
                        timeout=900,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                finally:
                    admin.delete_topics([topic])
                rate = args.lines / result["seconds"]
                print(
                    f"  round {r + 1} {mode:8s} {result['seconds']:6.2f} s  {rate:9,.0f} lines/s  "
                    f"CPU {result['cpu'] / args.lines * 1000 * 1000:6.1f} ms/1000 lines",
                    flush=True,
                )
                if mode not in best or result["seconds"] < best[mode]["seconds"]:
                    best[mode] = result
    finally:
        shutil.rmtree(workdir)
    print("\nbest of each:")
    print(f"{'publisher':14s} {'lines/s':>10s} {'vs its plain twin':>18s} {'CPU ms / 1000 lines':>20s}")
    for mode in MODES:
        rate = args.lines / best[mode]["seconds"]
        twin = args.lines / best[TWIN[mode]]["seconds"]
        per_k = best[mode]["cpu"] / args.lines * 1000 * 1000
        print(f"{mode:14s} {rate:10,.0f} {rate / twin:17.2f}x {per_k:20.1f}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
