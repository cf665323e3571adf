"""A side channel whose own librdkafka log lines are handled by a logger that publishes through the same
channel (what a task's log publishing does when Kafka is down) must never take the process down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import logging, time
    from datamover.hooks.kafka import RDKAFKA_LOGGER_PREFIX, KafkaHook

    channel = KafkaHook("kafka_default").side_channel("reentry.test", delivery_timeout_s=1)

    class Republish(logging.Handler):
        def emit(self, record):
            channel.send(None, record.getMessage())  # back into the channel whose log line this is

    logger = logging.getLogger(RDKAFKA_LOGGER_PREFIX.rstrip("."))
    logger.addHandler(Republish())
    logger.setLevel(logging.DEBUG)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        channel.send(None, "event")
        time.sleep(0.01)
    channel.close(1)
    print("survived", channel.dropped > 0)
    """
)


def test_a_log_handler_publishing_through_the_channel_does_not_abort_the_process() -> None:
    with socket.socket() as s:  # a port nothing listens on: every connect is refused at once
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    conn = {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{dead}", "debug": "broker"}}
    env = {**os.environ, "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(conn), "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "survived True" in result.stdout
