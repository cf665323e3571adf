"""The expected-sensors file: which objects an exposure should produce.

    <prefix>/<obsId>_expectedSensors.json =
    {"fileName": "<obsId>_expectedSensors.json", "fileType": "expectedSensors", "obsId": "<obsId>",
     "version": 1.0,
     "expectedSensors": {"R00_SW0": "SCIENCE", "R01_S00": "SCIENCE", ..., "R00_SG0": "GUIDER"}}

Each sensor yields two objects under the exposure's prefix, named by its type (SENSOR_OBJECTS):
SCIENCE (and WAVEFRONT) -> `<obsId>_<sensor>.fits` and `.json`; GUIDER -> `<obsId>_<sensor>_guider.fits` and
`_guider.json`. A sensor of a type not in the table is reported (`ignored`) and expects nothing, so a new
sensor type never blocks an exposure's evaluation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datamover.monitoring.messages import MessageError

MAX_EXPECTED_FILE_BYTES = 1024 * 1024

SENSOR_OBJECTS: Mapping[str, tuple[str, ...]] = {
    "SCIENCE": ("{obs}_{sensor}.fits", "{obs}_{sensor}.json"),
    "WAVEFRONT": ("{obs}_{sensor}.fits", "{obs}_{sensor}.json"),
    "GUIDER": ("{obs}_{sensor}_guider.fits", "{obs}_{sensor}_guider.json"),
}

_SENSOR = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True, slots=True)
class ExpectedObjects:
    obs_id: str
    keys: tuple[str, ...]  # full object keys, sorted
    sensors: int
    ignored: dict[str, str] = field(default_factory=dict)  # sensor -> unknown type


def parse_expected_sensors(
    raw: bytes | str | Mapping[str, Any],
    prefix: str,
    obs_id: str,
    sensor_objects: Mapping[str, tuple[str, ...]] = SENSOR_OBJECTS,
) -> ExpectedObjects:
    """The expected object keys of exposure `obs_id` (under `prefix`) from its expected-sensors file."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_EXPECTED_FILE_BYTES:
            raise MessageError(
                f"expected-sensors file of {obs_id} is larger than {MAX_EXPECTED_FILE_BYTES} bytes"
            )
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MessageError(f"expected-sensors file of {obs_id} is not JSON: {exc}") from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise MessageError(f"expected-sensors file of {obs_id} is not a JSON object")
    if doc.get("fileType", "expectedSensors") != "expectedSensors":
        raise MessageError(f"expected-sensors file of {obs_id} has fileType {doc.get('fileType')!r}")
    if doc.get("obsId", obs_id) != obs_id:
        raise MessageError(
            f"expected-sensors file under {prefix} names obsId {doc.get('obsId')!r}, not {obs_id}"
        )
    sensors = doc.get("expectedSensors")
    if not isinstance(sensors, Mapping):
        raise MessageError(f"expected-sensors file of {obs_id} has no 'expectedSensors' object")
    keys: set[str] = set()
    ignored: dict[str, str] = {}
    for sensor, kind in sensors.items():
        if not isinstance(sensor, str) or not _SENSOR.fullmatch(sensor):
            raise MessageError(f"expected-sensors file of {obs_id}: bad sensor name {sensor!r}")
        patterns = sensor_objects.get(str(kind).upper())
        if patterns is None:
            ignored[sensor] = str(kind)
            continue
        keys.update(f"{prefix}/{p.format(obs=obs_id, sensor=sensor)}" for p in patterns)
    return ExpectedObjects(obs_id=obs_id, keys=tuple(sorted(keys)), sensors=len(sensors), ignored=ignored)
