"""`OffloadStageConfig`: the Offload Stage's YAML, in the seed's exact shape.

config:
    storage_base_path: "/tmp/ark_logs"
    destination_bucket: "ark-logs-rhq"
    remove_after_offload: true
    server_endpoint: "127.0.0.1:38317"   # optional: overrides the AWS connection's endpoint
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datamover.config import CONFIG_DIR, FieldSpec, load_yaml, read_fields
from datamover.errors import ConfigError

DEFAULT_CONFIG = CONFIG_DIR / "ark_offload.yaml"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _check_bucket(value: str) -> str | None:
    if _BUCKET.match(value) and ".." not in value:
        return None
    return "is not a valid S3 bucket name (3-63 characters: lowercase letters, digits, '.', '-')"


def _check_endpoint(value: str) -> str | None:
    """`host:port` as in the seed; an http(s):// URL is accepted too."""
    text = value
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme) :].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return 'is not host:port (e.g. "127.0.0.1:38317")'
    return None


def _check_path(value: str) -> str | None:
    return None if value.strip() else "is empty"


FIELDS = [
    FieldSpec("storage_base_path", str, check=_check_path, help="where the onboard Ark Logs are"),
    FieldSpec("destination_bucket", str, check=_check_bucket, help="the S3 bucket to upload to"),
    FieldSpec("remove_after_offload", bool, default=False),
    FieldSpec("server_endpoint", str, default=None, check=_check_endpoint),
]
FIELD_NAMES = tuple(f.name for f in FIELDS)


@dataclass(frozen=True)
class OffloadStageConfig:
    storage_base_path: Path
    destination_bucket: str
    remove_after_offload: bool = False
    server_endpoint: str | None = None
    source: str = "<params>"

    @property
    def endpoint_url(self) -> str | None:
        """The override for the S3 connection's endpoint, as a URL."""
        if not self.server_endpoint:
            return None
        return self.server_endpoint if "://" in self.server_endpoint else f"http://{self.server_endpoint}"

    @classmethod
    def from_mapping(
        cls, data: Any, where: str, overrides: Mapping[str, Any] | None = None, check_storage: bool = True
    ) -> OffloadStageConfig:
        if data is None or not isinstance(data, Mapping) or set(data) != {"config"}:
            found = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ConfigError(
                f"{where}: expected exactly one top-level key 'config:' (as in the Offload "
                f"Stage documentation), found {found}."
            )
        section = dict(data["config"] or {})
        for key, value in (overrides or {}).items():
            if key not in FIELD_NAMES:
                raise ConfigError(
                    f"override {key!r} is not a config field; use one of {', '.join(FIELD_NAMES)}."
                )
            if value is not None and value != "":
                section[key] = value
        where_section = f"{where} (config:)" + (" with DAG param overrides" if overrides else "")
        fields = read_fields(section, FIELDS, where_section)
        config = cls(
            storage_base_path=Path(fields["storage_base_path"]).expanduser(),
            destination_bucket=fields["destination_bucket"],
            remove_after_offload=fields["remove_after_offload"],
            server_endpoint=fields["server_endpoint"],
            source=where,
        )
        if check_storage:
            config.check_storage()
        return config

    def check_storage(self) -> None:
        path = self.storage_base_path
        if not path.exists():
            raise ConfigError(
                f"{self.source}: storage_base_path {str(path)!r} does not exist; "
                "point it at the directory where the Ark Logs are recorded."
            )
        if not path.is_dir():
            raise ConfigError(f"{self.source}: storage_base_path {str(path)!r} is not a directory.")

    def with_overrides(self, **changes: Any) -> OffloadStageConfig:
        return replace(self, **changes)


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, check_storage: bool = True
) -> OffloadStageConfig:
    """Load the YAML at `path` (default include/config/ark_offload.yaml) and apply overrides
    (None or "" means: keep the file's value)."""
    path = Path(path) if path else DEFAULT_CONFIG
    return OffloadStageConfig.from_mapping(load_yaml(path), str(path), overrides, check_storage)
