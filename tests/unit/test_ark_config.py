"""OffloadStageConfig: the seed's YAML shape, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamover.ark.config import DEFAULT_CONFIG, load_config
from datamover.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "offload.yaml"
    path.write_text(body)
    return path


def test_seed_example_loads(tmp_path: Path) -> None:
    storage = tmp_path / "ark_logs"
    storage.mkdir()
    path = write(
        tmp_path,
        f"""---
config:
    storage_base_path: "{storage}"
    destination_bucket: "ark-logs-rhq"
    remove_after_offload: true
    server_endpoint: "127.0.0.1:38317"
""",
    )
    config = load_config(path)
    assert config.storage_base_path == storage
    assert config.destination_bucket == "ark-logs-rhq"
    assert config.remove_after_offload is True
    assert config.endpoint_url == "http://127.0.0.1:38317"


def test_default_file_is_valid_and_overridable(tmp_path: Path) -> None:
    config = load_config(DEFAULT_CONFIG, {"storage_base_path": str(tmp_path), "remove_after_offload": None})
    assert config.storage_base_path == tmp_path
    assert config.destination_bucket == "ark-logs-rhq"
    assert config.remove_after_offload is False
    assert config.endpoint_url is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("storage_base_path: /tmp\n", "expected exactly one top-level key 'config:'"),
        ("config:\n  destination_bucket: b-1\n", "required key 'storage_base_path' is missing"),
        ("config:\n  storage_base_path: /tmp\n", "required key 'destination_bucket' is missing"),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  colour: red\n",
            "unknown key(s) 'colour'",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: Bad_Bucket\n",
            "not a valid S3 bucket name",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  remove_after_offload: maybe\n",
            "must be true/false",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  server_endpoint: localhost\n",
            "is not host:port",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  server_endpoint: 'h:99999'\n",
            "is not host:port",
        ),
        ("config:\n  storage_base_path: /does/not/exist\n  destination_bucket: b-1\n", "does not exist"),
        ("config: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_key_and_fix(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, body))
    assert message in str(err.value)


def test_storage_path_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        load_config(DEFAULT_CONFIG, {"storage_base_path": str(a_file)})


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="override 'bucket' is not a config field"):
        load_config(DEFAULT_CONFIG, {"bucket": "x"})
