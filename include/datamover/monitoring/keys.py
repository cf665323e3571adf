"""Key layout of the camera's bucket.

    <instrument>/<imageDate>/<obsId>/<obsId>_<sensor>.fits|.json          a science/wavefront sensor
    <instrument>/<imageDate>/<obsId>/<obsId>_<sensor>_guider.fits|.json   a guider sensor
    <instrument>/<imageDate>/<obsId>/<obsId>_expectedSensors.json          what to expect

`<instrument>` comes from the End Readout's `imageSource` (MC -> LSSTCam, configurable).
"""

from __future__ import annotations

from typing import NamedTuple

EXPECTED_SENSORS_SUFFIX = "_expectedSensors.json"


def exposure_prefix(instrument: str, image_date: str, obs_id: str) -> str:
    return f"{instrument}/{image_date}/{obs_id}"


def expected_sensors_key(prefix: str, obs_id: str) -> str:
    return f"{prefix}/{obs_id}{EXPECTED_SENSORS_SUFFIX}"


class KeyParts(NamedTuple):
    prefix: str  # <instrument>/<imageDate>/<obsId>
    obs_id: str
    name: str  # the file name under the prefix

    @property
    def is_expected_sensors(self) -> bool:
        return self.name == f"{self.obs_id}{EXPECTED_SENSORS_SUFFIX}"


def split_key(key: str) -> KeyParts | None:
    """The exposure a key belongs to, or None for keys outside the layout (counted, never timed)."""
    parts = key.split("/")
    if len(parts) != 4 or not all(parts):
        return None
    instrument, image_date, obs_id, name = parts
    return KeyParts(f"{instrument}/{image_date}/{obs_id}", obs_id, name)
