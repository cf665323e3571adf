"""`OffloadStageConfig`: the Offload Stage's YAML in the seed's shape, one pydantic model for the file and
the trigger form's overrides.

config:
    storage_base_path: "/tmp/ark_logs"
    destination_bucket: "ark-logs-rhq"
    remove_after_offload: true
    server_endpoint: "127.0.0.1:38317"   # optional: replaces the AWS connection's endpoint
    aws_conn_id: aws_default             # optional: the connection whose credentials are used
    prefix: logs                         # optional: key prefix in the bucket
    create_bucket: false                 # optional: create a missing bucket (local setups only)

Deployment settings (the storage folder, the endpoint, bucket creation) come only from this file; a
trigger may override the bucket, the prefix, the connection id and remove_after_offload, never a host
or a local path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from datamover.config import BucketName, ConfigModel, KeyPrefix, load_config, tri_state
from datamover.errors import ConfigError

CONFIG_NAME = "ark_offload"

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _endpoint(value: str) -> str:
    """`host:port` as in the seed; an http(s):// URL is accepted too."""
    text = value
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme) :].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('is not host:port (e.g. "127.0.0.1:38317")')
    return value


def _path(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: point it at the directory where the Ark Logs are recorded")
    return value


class OffloadStageConfig(ConfigModel):
    storage_base_path: Annotated[str, AfterValidator(_path)]
    destination_bucket: BucketName
    remove_after_offload: bool = False
    server_endpoint: Annotated[str, AfterValidator(_endpoint)] | None = None
    aws_conn_id: str = Field("aws_default", min_length=1)
    prefix: KeyPrefix = "logs"
    create_bucket: bool = False

    @property
    def storage(self) -> Path:
        return Path(self.storage_base_path).expanduser()

    @property
    def endpoint_url(self) -> str | None:
        """The override for the S3 connection's endpoint, as a URL."""
        if not self.server_endpoint:
            return None
        return self.server_endpoint if "://" in self.server_endpoint else f"http://{self.server_endpoint}"

    def check_storage(self) -> OffloadStageConfig:
        path = self.storage
        if not path.exists():
            raise ConfigError(
                f"storage_base_path {str(path)!r} does not exist. Fix: point it at the directory where the "
                "Ark Logs are recorded (include/config/ark_offload.yaml)."
            )
        if not path.is_dir():
            raise ConfigError(f"storage_base_path {str(path)!r} is not a directory.")
        return self


class OffloadStageFile(ConfigModel):
    """The file's shape: everything under one `config:` key, as the Offload Stage documentation writes it."""

    config: OffloadStageConfig


# Trigger-form params -> the keys they override (None/"" keeps the file's value).
PARAM_OVERRIDES = {
    "destination_bucket": "config.destination_bucket",
    "prefix": "config.prefix",
    "aws_conn_id": "config.aws_conn_id",
    "remove_after_offload": "config.remove_after_offload",
}


def config_for_run(params: Mapping[str, Any] | None = None) -> OffloadStageConfig:
    """The Offload Stage config with this run's form values, validated by the same model."""
    params = params or {}
    overrides = {path: params.get(param) for param, path in PARAM_OVERRIDES.items()}
    overrides["config.remove_after_offload"] = tri_state(
        params.get("remove_after_offload"), "remove_after_offload"
    )
    return load_config(OffloadStageFile, CONFIG_NAME, overrides).config
