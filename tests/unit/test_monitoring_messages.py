"""Parsers of the Ceph/S3 bucket notification, the End Readout event and the expected-sensors file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datamover.monitoring.expected import parse_expected_sensors
from datamover.monitoring.keys import expected_sensors_key, exposure_prefix, split_key
from datamover.monitoring.messages import (
    MessageError,
    parse_end_readout,
    parse_notification,
    split_colon_list,
)

# The notification of the facts note (Ceph RGW, S3 event schema 2.2), as it arrives on Kafka.
CEPH_NOTIFICATION = (
    '{"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","awsRegion":"default",'
    '"eventTime":"2025-04-23T19:19:54.172258Z","eventName":"ObjectCreated:Put",'
    '"userIdentity":{"principalId":"rubin"},"requestParameters":{"sourceIPAddress":""},'
    '"responseElements":{"x-amz-request-id":"abc.1234.5","x-amz-id-2":"1234-default-default"},'
    '"s3":{"s3SchemaVersion":"1.0","configurationId":"summit","bucket":{"name":"rubin-summit",'
    '"ownerIdentity":{"principalId":"rubin"},"arn":"arn:aws:s3:::rubin-summit","id":"abc.4110.4"},'
    '"object":{"key":"LSSTCam/20250423/MC_O_20250423_000034/MC_O_20250423_000034_R31_S10.json","size":2867,'
    '"eTag":"c2484080b0150e9e7f943760c0171add","versionId":"","sequencer":"5A3D096863AA680C",'
    '"metadata":[],"tags":[]}},"eventId":"1745435994.208185.c2484080b0150e9e7f943760c0171add","opaqueData":""}]}'
)


def test_ceph_notification() -> None:
    (event,) = parse_notification(CEPH_NOTIFICATION.encode())
    assert event.bucket == "rubin-summit"
    assert event.key == "LSSTCam/20250423/MC_O_20250423_000034/MC_O_20250423_000034_R31_S10.json"
    assert event.event_time == datetime(2025, 4, 23, 19, 19, 54, 172258, tzinfo=UTC)
    assert event.is_created and event.size == 2867 and event.etag == "c2484080b0150e9e7f943760c0171add"
    assert event.sequencer == "5A3D096863AA680C"


def test_aws_style_millisecond_time_and_several_records() -> None:
    doc = json.loads(CEPH_NOTIFICATION)
    second = json.loads(CEPH_NOTIFICATION)["Records"][0]
    second["eventTime"] = "2025-04-23T19:19:55.001Z"
    second["eventName"] = "ObjectRemoved:Delete"
    doc["Records"].append(second)
    first, removed = parse_notification(doc)
    assert removed.event_time == datetime(2025, 4, 23, 19, 19, 55, 1000, tzinfo=UTC)
    assert first.is_created and not removed.is_created


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "expected a JSON object"),
        (b'{"Records": []}', "no 'Records' list"),
        (b'{"Records": [{"s3": {}}]}', "has no s3.object"),
        (b'{"Records": [{"s3": {"object": {"key": ""}, "bucket": {}}}]}', "has no s3.object.key"),
        (
            b'{"Records": [{"eventTime": "yesterday", "s3": {"object": {"key": "k"}, "bucket": {}}}]}',
            "eventTime is not ISO 8601",
        ),
    ],
)
def test_malformed_notifications(raw: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        parse_notification(raw)


END_READOUT = {
    "private_sndStamp": 1746185390.123,
    "private_rcvStamp": 1746185390.2,
    "private_efdStamp": 1746185353.2,
    "private_kafkaStamp": 1746185390.3,
    "private_seqNum": 12,
    "private_revCode": "c3a4f7e1",
    "private_identity": "MTCamera",
    "private_origin": 4242,
    "additionalKeys": "imageType:groupId:testType",
    "additionalValues": "OBJECT:2025-05-02T03\\:09\\:50.123:",
    "imagesInSequence": 1,
    "imageName": "MC_O_20250502_000010",
    "imageIndex": 1,
    "imageSource": "MC",
    "imageController": "O",
    "imageDate": "20250502",
    "imageNumber": 10,
    "timestampAcquisitionStart": 1746185358.0,
    "requestedExposureTime": 30.0,
    "timestampEndOfReadout": 1746185390.071,
}


def test_end_readout() -> None:
    eor = parse_end_readout(json.dumps(END_READOUT))
    assert (eor.obs_id, eor.image_date, eor.image_source, eor.image_controller) == (
        "MC_O_20250502_000010",
        "20250502",
        "MC",
        "O",
    )
    assert eor.image_number == 10 and eor.timestamp_end_of_readout == 1746185390.071
    assert eor.additional == {"imageType": "OBJECT", "groupId": "2025-05-02T03:09:50.123", "testType": ""}
    assert eor.raw["private_seqNum"] == 12


def test_colon_lists() -> None:
    assert split_colon_list("") == []
    assert split_colon_list("a:b\\:c:d") == ["a", "b:c", "d"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timestampEndOfReadout": None}, "timestampEndOfReadout"),
        ({"timestampEndOfReadout": "1746185390"}, "timestampEndOfReadout"),
        ({"timestampEndOfReadout": True}, "timestampEndOfReadout"),
        ({"timestampEndOfReadout": float("nan")}, "timestampEndOfReadout"),
        ({"imageName": "../etc"}, "imageName"),
        ({"imageDate": "2025-05-02"}, "imageDate"),
        ({"imageSource": None}, "imageSource"),
        ({"additionalValues": "OBJECT"}, "additionalKeys has 3 entries but additionalValues 1"),
    ],
)
def test_malformed_end_readouts(change: dict[str, object], message: str) -> None:
    with pytest.raises(MessageError, match=message):
        parse_end_readout({**END_READOUT, **change})


def test_key_layout() -> None:
    prefix = exposure_prefix("LSSTCam", "20250423", "MC_O_20250423_000034")
    assert prefix == "LSSTCam/20250423/MC_O_20250423_000034"
    key = expected_sensors_key(prefix, "MC_O_20250423_000034")
    assert key == "LSSTCam/20250423/MC_O_20250423_000034/MC_O_20250423_000034_expectedSensors.json"
    parts = split_key(key)
    assert parts is not None and parts.prefix == prefix and parts.is_expected_sensors
    data = split_key(f"{prefix}/MC_O_20250423_000034_R31_S10.fits")
    assert data is not None and not data.is_expected_sensors and data.obs_id == "MC_O_20250423_000034"
    assert split_key("elsewhere/file.txt") is None
    assert split_key("a/b/c/d/e") is None
    assert split_key("a//c/d") is None


def test_expected_sensors_file() -> None:
    obs = "MC_O_20250423_000034"
    prefix = f"LSSTCam/20250423/{obs}"
    doc = {
        "fileName": f"{obs}_expectedSensors.json",
        "fileType": "expectedSensors",
        "obsId": obs,
        "version": 1.0,
        "expectedSensors": {
            "R00_SW0": "SCIENCE",
            "R01_S00": "SCIENCE",
            "R00_SG0": "GUIDER",
            "R99_X": "NEWKIND",
        },
    }
    expected = parse_expected_sensors(json.dumps(doc).encode(), prefix, obs)
    assert expected.keys == tuple(
        sorted(
            f"{prefix}/{obs}_{name}"
            for name in (
                "R00_SW0.fits",
                "R00_SW0.json",
                "R01_S00.fits",
                "R01_S00.json",
                "R00_SG0_guider.fits",
                "R00_SG0_guider.json",
            )
        )
    )
    assert expected.sensors == 4 and expected.ignored == {"R99_X": "NEWKIND"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{", "is not JSON"),
        (b"[]", "is not a JSON object"),
        (b'{"fileType": "other", "expectedSensors": {}}', "has fileType 'other'"),
        (b'{"obsId": "MC_O_1", "expectedSensors": {}}', "names obsId 'MC_O_1'"),
        (b'{"expectedSensors": []}', "has no 'expectedSensors' object"),
        (b'{"expectedSensors": {"../x": "SCIENCE"}}', "bad sensor name"),
        (b" " * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_malformed_expected_sensors(doc: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        parse_expected_sensors(doc, "LSSTCam/20250423/MC_O_2", "MC_O_2")


def test_notification_captured_from_the_local_ceph_rgw() -> None:
    # Pushed over HTTP by Debian 12's radosgw (Ceph 16.2.15) for a PUT, saved byte for byte
    # (tests/integration/test_transfer_monitoring_rgw.py captures a fresh one on every run).
    raw = (Path(__file__).parent / "data" / "ceph_rgw_notification.json").read_bytes()
    (event,) = parse_notification(raw)
    assert event.bucket == "probe-05b6a2b6"
    assert event.key == "LSSTCam/20250423/MC_O_20250423_000034/MC_O_20250423_000034_R31_S10.json"
    assert event.event_time == datetime(2026, 11, 25, 21, 22, 32, 372050, tzinfo=UTC)
    assert (event.size, event.etag, event.sequencer) == (
        2,
        "99914b932bd37a50b983c5e7c90ae93b",
        "9851076B77437B16",
    )
    assert event.is_created
