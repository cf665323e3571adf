"""The file tailer on real Kafka: every record exactly once (read_committed) across stack traces,
rotation, truncation, a graceful restart and a SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.hooks.streams import file_tailer
from datamover.streams.registry import DefinitionRegistry
from datamover.streams.settings import LogFileConfig, LogPublishingConfig, TailConfig
from datamover.streams.tail import FileTailer

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]
TRACE = [
    "Traceback (most recent call last):",
    '  File "/opt/x.py", line 3, in <module>',
    "    boom()",
    "ValueError: boom",
]


def line(n: int, level: str = "INFO") -> str:
    stamp = f"2026-11-24 10:{n // 6000 % 60:02d}:{n // 100 % 60:02d},{n % 1000:03d}"
    return f"{stamp} {level} app.mod - line {n:06d}"


class Topics:
    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.events = f"test.logs.{suffix}"
        self.positions = f"test.positions.{suffix}"
        self.definitions = f"test.definitions.{suffix}"

    def config(
        self, path: Path, lock_dir: Path, tail: dict[str, int] | None = None, **file: object
    ) -> LogPublishingConfig:
        return LogPublishingConfig(
            topic=self.events,
            positions_topic=self.positions,
            tenant_id="t1",
            alias="tailtest",
            files=[LogFileConfig(path=str(path), app_name="tailed-app", **file)],
            tail=TailConfig(
                poll_interval_s=0.05,
                flush_after_s=0.3,
                rotate_grace_s=0.3,
                lock_dir=str(lock_dir),
                **(tail or {}),
            ),
        )


@pytest.fixture
def topics() -> Iterator[Topics]:
    t = Topics()
    yield t
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [x for x in (t.events, t.positions, t.definitions) if x in existing]
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=10).values():
            future.result()


class Reader:
    """Reads the events topic (its first `partitions`) with read_committed and decodes with the published
    definitions only."""

    def __init__(self, topics: Topics, partitions: int = 1) -> None:
        self.topics = topics
        self.partitions = partitions
        self.payloads: list[dict] = []
        self.stream_ids: list[str] = []
        self.placements: list[tuple[int, bytes | None]] = []  # each event's partition and key
        self._consumer: Consumer | None = None
        self._registry: DefinitionRegistry | None = None

    def _make(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )

    def until(self, count: int, timeout: float = 60, settle: float = 1.5) -> list[dict]:
        """Read until `count` records arrived (then `settle` s more, to catch duplicates)."""
        deadline = time.monotonic() + timeout
        if self._consumer is None:
            while self.topics.events not in self._make().list_topics(timeout=10).topics:
                assert time.monotonic() < deadline, "events topic never created"
                time.sleep(0.2)
            self._consumer = self._make()
            self._consumer.assign(
                [TopicPartition(self.topics.events, p, OFFSET_BEGINNING) for p in range(self.partitions)]
            )
            self._registry = DefinitionRegistry(self._make(), self.topics.definitions)
        extra_until = None
        while True:
            now = time.monotonic()
            if len(self.payloads) >= count and extra_until is None:
                extra_until = now + settle
            if extra_until is not None and now >= extra_until:
                return self.payloads
            assert now < deadline, f"{len(self.payloads)} of {count} records arrived"
            for message in self._consumer.consume(1000, timeout=0.2):
                if message.error() is None:
                    definition, doc = self._registry.decode(message.value())
                    self.stream_ids.append(definition.stream_id)
                    self.payloads.append(doc["payload"])
                    self.placements.append((message.partition(), message.key()))

    def messages(self) -> list[str]:
        return [p["message"] for p in self.payloads]


def start(tailer: FileTailer) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=tailer.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as f:
        f.write("".join(f"{x}\n" for x in lines))


def test_records_with_stack_traces_exactly_once(topics: Topics, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, [line(1), line(2, "ERROR"), *TRACE, line(3, "WARN")])
    tailer = file_tailer(
        topics.config(log, tmp_path),
        topics.config(log, tmp_path).files[0],
        "h.scheduler",
        definitions=topics.definitions,
    )
    thread, stop = start(tailer)
    reader = Reader(topics)
    try:
        got = reader.until(3)
        append(log, [line(4), "  a continuation with no record before it? no: it follows line 4"])
        got = reader.until(4)
    finally:
        stop.set()
        thread.join(30)
    assert [p["message"] for p in got] == ["line 000001", "line 000002", "line 000003", "line 000004"]
    assert [p["priority"] for p in got] == ["INFO", "ERROR", "WARNING", "INFO"]
    assert got[1]["stacktrace"] == "\n".join(TRACE)
    assert got[3]["stacktrace"] == "  a continuation with no record before it? no: it follows line 4"
    assert got[0]["stacktrace"] == "" and got[0]["logger"] == "app.mod"
    assert got[0]["logTime"] == 1795514400001  # 2026-11-24T10:00:00.001Z
    assert got[0]["appName"] == "tailed-app" and got[0]["instance"] == str(log)
    assert set(reader.stream_ids) == {"logs.t1.tailtest.2026.11.24:1.0.0"}


def test_a_full_producer_queue_starts_the_transaction_over_exactly_once(
    topics: Topics, tmp_path: Path
) -> None:
    """A batch larger than the producer's queue: the transaction is started over, produced one by one as
    the queue drains, and every record still arrives once, in order."""
    log = tmp_path / "app.log"
    append(log, [line(n) for n in range(3000)])
    config = topics.config(log, tmp_path)
    tailer = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    tailer.store.producer_factory = lambda tid: Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "transactional.id": tid,
            "enable.idempotence": True,
            "queue.buffering.max.messages": 100,
        }
    )
    thread, stop = start(tailer)
    try:
        got = Reader(topics).until(3000)  # (the last one once the file stayed quiet)
    finally:
        stop.set()
        thread.join(30)
    assert tailer.store.restarted > 0
    assert [p["message"] for p in got] == [f"line {n:06d}" for n in range(3000)]


def test_a_file_keeps_the_partition_its_key_gives_and_its_order(topics: Topics, tmp_path: Path) -> None:
    """With several partitions, every event of a file goes, in order and with the file's key, to the
    partition a plain keyed produce lands in (the tailer works it out once instead of per message)."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    scratch = f"test.partitioner.{uuid.uuid4().hex[:12]}"
    for future in admin.create_topics([NewTopic(topics.events, 5, 1), NewTopic(scratch, 5, 1)]).values():
        future.result()
    log = tmp_path / "app.log"
    append(log, [line(n) for n in range(500)])
    config = topics.config(log, tmp_path)
    tailer = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    landed: list[int] = []
    plain = Producer({"bootstrap.servers": BOOTSTRAP})
    plain.produce(scratch, b"x", tailer.key, on_delivery=lambda err, msg: landed.append(msg.partition()))
    assert plain.flush(10) == 0
    thread, stop = start(tailer)
    reader = Reader(topics, partitions=5)
    try:
        got = reader.until(500)
    finally:
        stop.set()
        thread.join(30)
        admin.delete_topics([scratch])
    assert set(reader.placements) == {(landed[0], tailer.key)}
    assert [p["message"] for p in got] == [f"line {n:06d}" for n in range(500)]


def test_batch_bytes_bound_each_transaction_and_a_longer_line_is_cut(topics: Topics, tmp_path: Path) -> None:
    """batch_bytes ends a transaction after that many bytes of the file; a line longer than it is cut at
    max_line_bytes as always, and the lines after it follow."""
    log = tmp_path / "app.log"
    first = [line(n) for n in range(20_000)]  # ~1.1 MB
    append(log, [*first, f"{line(20_000)} {'x' * 600_000}", *[line(n) for n in range(20_001, 20_101)]])
    config = topics.config(log, tmp_path, tail={"batch_bytes": 256 * 1024})
    tailer = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    thread, stop = start(tailer)
    try:
        got = Reader(topics).until(20_101)
    finally:
        stop.set()
        thread.join(30)
    assert [p["message"] for p in got[:20_000]] == [f"line {n:06d}" for n in range(20_000)]
    assert got[20_000]["message"].startswith("line 020000 xxx") and len(got[20_000]["message"]) < 70_000
    assert [p["message"] for p in got[20_001:]] == [f"line {n:06d}" for n in range(20_001, 20_101)]
    assert tailer.transactions >= 5  # 1.7 MB in transactions of at most 256 KiB plus one read


def test_rotation_truncation_and_restart_lose_nothing_and_repeat_nothing(
    topics: Topics, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    config = topics.config(log, tmp_path)
    expected: list[str] = []

    def write(numbers: range, path: Path = log) -> None:
        append(path, [line(n) for n in numbers])
        expected.extend(f"line {n:06d}" for n in numbers)

    reader = Reader(topics)
    write(range(0, 300))
    tailer = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    thread, stop = start(tailer)
    try:
        reader.until(300)
        # rotation (rename + create); the writer still appends to the old file for a moment
        rotated = tmp_path / "app.log.1"
        log.rename(rotated)
        write(range(300, 320), rotated)
        write(range(320, 500))
        reader.until(500)
        # copytruncate: the same file, emptied, written again
        with log.open("w"):
            pass
        time.sleep(0.5)
        write(range(500, 600))
        reader.until(600)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    # stopped: lines written, the file rotated twice, more lines: all of it after the restart, once
    write(range(600, 700))
    log.rename(tmp_path / "app.log.2")
    write(range(700, 800))
    tailer = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    thread, stop = start(tailer)
    try:
        reader.until(800)
    finally:
        stop.set()
        thread.join(30)
    assert reader.messages() == expected


def test_sigkill_mid_stream_then_restart_is_exactly_once(topics: Topics, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    config = topics.config(log, tmp_path)
    total = 30_000
    append(log, [line(n) for n in range(total)])
    args = [
        sys.executable,
        str(HERE / "tail_worker.py"),
        config.model_dump_json(),
        topics.definitions,
        "h.sched",
    ]
    reader = Reader(topics)
    worker = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader.until(2000, settle=0)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        killed_at = len(reader.payloads)
        assert killed_at < total, "the tailer finished before it was killed: nothing tested"
        worker = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader.until(total, timeout=120, settle=3)
    finally:
        worker.kill()
        worker.wait(30)
    assert reader.messages() == [f"line {n:06d}" for n in range(total)]


def test_a_second_tailer_of_the_same_file_stands_by(topics: Topics, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    config = topics.config(log, tmp_path)
    append(log, [line(n) for n in range(50)])
    first = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    second = file_tailer(config, config.files[0], "h.scheduler", definitions=topics.definitions)
    threads = [start(first), start(second)]
    reader = Reader(topics)
    try:
        reader.until(50)
        append(log, [line(n) for n in range(50, 100)])
        reader.until(100)
    finally:
        for thread, stop in threads:
            stop.set()
            thread.join(30)
    assert reader.messages() == [f"line {n:06d}" for n in range(100)]
    assert sorted([first.sent_records, second.sent_records]) == [0, 100]
