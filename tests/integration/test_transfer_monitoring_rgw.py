"""A real bucket notification from the local Ceph RGW, taken as it is by the parser and the ingest.

Debian 12's radosgw (Ceph 16.2 Pacific) is built with the HTTP and AMQP push endpoints but without Kafka
(it does not link librdkafka), so the notification is pushed over HTTP to a listener this test runs: an
SNS CreateTopic with `push-endpoint`, a PutBucketNotificationConfiguration for s3:ObjectCreated:*, then a
PUT. In production Ceph pushes the same JSON to Kafka (`push-endpoint=kafka://...`); here the test
produces the captured bytes, unchanged, onto the file-notification topic.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from datamover.monitoring.messages import parse_notification
from tests.integration.monitoring_support import Monitor, monitor_namespace, scalar

pytestmark = pytest.mark.integration


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    yield from monitor_namespace()


@pytest.fixture
def listener() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_real_rgw_notification_is_parsed_and_ingested_as_it_is(
    monitor: Monitor, listener: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]
) -> None:
    endpoint, received = listener
    bucket = monitor.cfg.object_store.bucket
    sns = boto3.client(
        "sns",
        endpoint_url=os.environ["DATAMOVER_CEPH_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["DATAMOVER_CEPH_ACCESS_KEY"],
        aws_secret_access_key=os.environ["DATAMOVER_CEPH_SECRET_KEY"],
    )
    topic_arn = sns.create_topic(Name=bucket, Attributes={"push-endpoint": endpoint})["TopicArn"]
    try:
        monitor.hook.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "TopicConfigurations": [
                    {"Id": "summit", "TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        obs_id = "MC_O_20250423_000034"
        key = f"LSSTCam/20250423/{obs_id}/{obs_id}_R31_S10.json"
        body = b'{"sensor": "R31_S10"}'
        before = datetime.now(UTC)
        etag = monitor.hook.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        headers, raw = received.get(timeout=30)
    finally:
        sns.delete_topic(TopicArn=topic_arn)

    assert headers.get("Content-Type") == "application/json"
    assert json.loads(raw)["Records"][0]["eventSource"] == "ceph:s3"
    (event,) = parse_notification(raw)
    assert (event.bucket, event.key, event.size, event.etag) == (bucket, key, len(body), etag)
    assert event.is_created and event.event_name == "ObjectCreated:Put"
    assert before - timedelta(seconds=2) <= event.event_time <= datetime.now(UTC) + timedelta(seconds=2)
    (listed,) = monitor.hook.s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    # eventTime is the object's mtime (µs); a listing gives the same instant to the millisecond.
    assert listed["LastModified"].astimezone(UTC) == event.event_time.replace(
        microsecond=event.event_time.microsecond // 1000 * 1000
    )

    # The same bytes on the file-notification topic go through the ingest unchanged.
    monitor.feed.raw(monitor.cfg.file_notifications.topic, raw)
    stats = monitor.ingest()
    assert (stats.notifications, stats.malformed, stats.ignored) == (1, 0, 0)
    stored = scalar(monitor, "SELECT first_time FROM {s}.objects WHERE key = %s", key)
    assert stored == event.event_time
    assert scalar(monitor, "SELECT sum(received) FROM {s}.file_messages") == 1
