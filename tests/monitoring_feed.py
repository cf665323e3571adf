"""A camera-and-object-store stand-in for transfer monitoring tests and benchmarks.

`Feed` writes what the summit would: exposure objects and expected-sensors files into a Ceph RGW bucket,
a bucket notification per object on the file-notification topic (the Ceph RGW 2.2 JSON, as captured from
the local RGW by tests/integration/test_transfer_monitoring_rgw.py), and End Readout events (JSON) on
their topic. Times can be real (the notification carries the time the PUT completed) or given (a scenario
set in the past, evaluated at once, with exact expectations).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

TAI_MINUS_UTC = 37.0


def lsstcam_sensors() -> dict[str, str]:
    """LSSTCam's 205 sensors (189 science, 8 wavefront marked SCIENCE, 8 guider): 410 objects."""
    sensors: dict[str, str] = {}
    corners = {"R00", "R04", "R40", "R44"}
    for x in range(5):
        for y in range(5):
            raft = f"R{x}{y}"
            if raft in corners:
                sensors[f"{raft}_SW0"] = "SCIENCE"
                sensors[f"{raft}_SW1"] = "SCIENCE"
                sensors[f"{raft}_SG0"] = "GUIDER"
                sensors[f"{raft}_SG1"] = "GUIDER"
            else:
                for i in range(3):
                    for j in range(3):
                        sensors[f"{raft}_S{i}{j}"] = "SCIENCE"
    return sensors


def small_sensors(n: int) -> dict[str, str]:
    """n science sensors of the first raft (2n objects)."""
    return {f"R01_S{i // 3}{i % 3}": "SCIENCE" for i in range(n)}


def object_names(obs_id: str, sensors: Mapping[str, str]) -> list[str]:
    names = []
    for sensor, kind in sensors.items():
        suffix = "_guider" if kind == "GUIDER" else ""
        names += [f"{obs_id}_{sensor}{suffix}.fits", f"{obs_id}_{sensor}{suffix}.json"]
    return names


def expected_file(obs_id: str, sensors: Mapping[str, str]) -> bytes:
    return json.dumps(
        {
            "fileName": f"{obs_id}_expectedSensors.json",
            "fileType": "expectedSensors",
            "obsId": obs_id,
            "version": 1.0,
            "expectedSensors": dict(sensors),
        }
    ).encode()


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def notification(bucket: str, key: str, when: datetime, size: int, etag: str) -> bytes:
    """A bucket notification in the shape Ceph RGW sends (S3 event schema, eventVersion 2.2)."""
    stamp = when.timestamp()
    record = {
        "eventVersion": "2.2",
        "eventSource": "ceph:s3",
        "awsRegion": "",
        "eventTime": iso(when),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "datamover"},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex, "x-amz-id-2": "100b-default-default"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "summit",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "datamover"},
                "arn": f"arn:aws:s3:::{bucket}",
                "id": "local.1",
            },
            "object": {
                "key": key,
                "size": size,
                "eTag": etag,
                "versionId": "",
                "sequencer": f"{int(stamp * 1e6) & 0xFFFFFFFFFFFFFFFF:016X}",
                "metadata": [],
                "tags": [],
            },
        },
        "eventId": f"{stamp:.6f}.{etag}",
        "opaqueData": "",
    }
    return json.dumps({"Records": [record]}, separators=(",", ":")).encode()


def end_readout(obs_id: str, image_date: str, tai: float, seq: int = 1) -> bytes:
    number = int(obs_id.rsplit("_", 1)[-1])
    return json.dumps(
        {
            "private_sndStamp": tai + 0.05,
            "private_rcvStamp": tai + 0.06,
            "private_efdStamp": tai + 0.05 - TAI_MINUS_UTC,
            "private_kafkaStamp": tai + 0.07,
            "private_seqNum": seq,
            "private_revCode": "c3a4f7e1",
            "private_identity": "MTCamera",
            "private_origin": 4242,
            "additionalKeys": "imageType:groupId",
            "additionalValues": f"OBJECT:{image_date}T03\\:00\\:00",
            "imagesInSequence": 1,
            "imageName": obs_id,
            "imageIndex": 1,
            "imageSource": obs_id.split("_", 1)[0],
            "imageController": obs_id.split("_")[1],
            "imageDate": image_date,
            "imageNumber": number,
            "timestampAcquisitionStart": tai - 32.0,
            "requestedExposureTime": 30.0,
            "timestampEndOfReadout": tai,
        }
    ).encode()


@dataclass
class Feed:
    """Writes objects to `bucket` (an S3 client on the Ceph RGW) and messages to the two topics."""

    s3: Any
    producer: Producer
    bucket: str
    file_topic: str
    eor_topic: str
    instrument: str = "LSSTCam"
    body: bytes = field(default=b"x" * 64)
    sent_notifications: int = 0

    def put(self, key: str, body: bytes | None = None) -> tuple[datetime, int, str]:
        """PUT an object; (completion time, size, ETag)."""
        data = self.body if body is None else body
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return datetime.now(UTC), len(data), response["ETag"].strip('"')

    def notify(self, key: str, when: datetime, size: int = 64, etag: str | None = None) -> None:
        etag = etag or hashlib.md5(key.encode()).hexdigest()
        self.producer.produce(
            self.file_topic, key=key.encode(), value=notification(self.bucket, key, when, size, etag)
        )
        self.sent_notifications += 1
        self.producer.poll(0)

    def object(
        self, key: str, when: datetime | None = None, *, notify: bool = True, body: bytes | None = None
    ) -> datetime:
        """PUT and (unless `notify` is False: a lost notification) notify; the notification carries `when`
        if given (a scenario in the past) or the PUT's completion time."""
        done, size, etag = self.put(key, body)
        at = when or done
        if notify:
            self.notify(key, at, size, etag)
        return at

    def end_of_readout(self, obs_id: str, image_date: str, tai: float, seq: int = 1) -> None:
        self.producer.produce(
            self.eor_topic, key=obs_id.encode(), value=end_readout(obs_id, image_date, tai, seq)
        )
        self.producer.poll(0)

    def raw(self, topic: str, value: bytes) -> None:
        self.producer.produce(topic, value=value)

    def prefix(self, obs_id: str, image_date: str) -> str:
        return f"{self.instrument}/{image_date}/{obs_id}"

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        assert remaining == 0, f"{remaining} Kafka message(s) not delivered"


def empty_bucket(s3: Any, bucket: str, delete: bool = True) -> None:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    if delete:
        s3.delete_bucket(Bucket=bucket)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def names_under(keys: Iterable[str]) -> list[str]:
    return sorted(k.rsplit("/", 1)[-1] for k in keys)


def prometheus_url() -> str:
    return os.environ.get("DATAMOVER_PROMETHEUS_URL", "http://127.0.0.1:59090")
