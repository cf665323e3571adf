"""OffloadStageConfig: the seed's YAML shape, the form's overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamover.ark.config import config_for_run
from datamover.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "config"


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment config folder: the shipped files, the test writes its own ark_offload.yaml."""
    folder = tmp_path / "config"
    folder.mkdir()
    for f in SHIPPED.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text())
    monkeypatch.setenv("DATAMOVER_CONFIG_DIR", str(folder))
    return folder


def write(folder: Path, body: str) -> None:
    (folder / "ark_offload.yaml").write_text(body)


def test_seed_example_loads(config_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "ark_logs"
    storage.mkdir()
    write(
        config_dir,
        f"""---
config:
    storage_base_path: "{storage}"
    destination_bucket: "ark-logs-rhq"
    remove_after_offload: true
    server_endpoint: "127.0.0.1:38317"
""",
    )
    config = config_for_run().check_storage()
    assert config.storage == storage
    assert config.destination_bucket == "ark-logs-rhq"
    assert config.remove_after_offload is True
    assert config.endpoint_url == "http://127.0.0.1:38317"
    assert (config.aws_conn_id, config.prefix, config.create_bucket) == ("aws_default", "logs", False)


def test_shipped_file_is_valid_and_the_form_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMOVER_CONFIG_DIR", raising=False)
    config = config_for_run({"remove_after_offload": "config", "destination_bucket": None})
    assert (config.destination_bucket, config.remove_after_offload, config.endpoint_url) == (
        "ark-logs-rhq",
        False,
        None,
    )
    config = config_for_run({"remove_after_offload": "yes", "destination_bucket": "other", "prefix": "x/y"})
    assert (config.destination_bucket, config.remove_after_offload, config.prefix) == ("other", True, "x/y")


def test_the_form_cannot_set_a_host_or_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials must never be sent to a host a trigger chose: endpoints come from config/connections."""
    monkeypatch.delenv("DATAMOVER_CONFIG_DIR", raising=False)
    config = config_for_run({"server_endpoint": "evil.example:80", "storage_base_path": "/etc"})
    assert config.endpoint_url is None and config.storage_base_path == "/tmp/ark_logs"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("storage_base_path: /tmp\n", "config: Field required"),
        ("config:\n  destination_bucket: b-1\n", "config.storage_base_path: Field required"),
        ("config:\n  storage_base_path: /tmp\n", "config.destination_bucket: Field required"),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  colour: red\n",
            "colour: unknown key",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: Bad_Bucket\n",
            "not a valid S3 bucket name",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  remove_after_offload: maybe\n",
            "config.remove_after_offload: Input should be a valid boolean",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  server_endpoint: localhost\n",
            "is not host:port",
        ),
        (
            "config:\n  storage_base_path: /tmp\n  destination_bucket: b-1\n  server_endpoint: 'h:99999'\n",
            "is not host:port",
        ),
        ("config: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_file_the_key_and_fix(config_dir: Path, body: str, message: str) -> None:
    write(config_dir, body)
    with pytest.raises(ConfigError) as err:
        config_for_run()
    assert message in str(err.value) and "ark_offload.yaml" in str(err.value)


def test_storage_path_must_exist_and_be_a_directory(config_dir: Path, tmp_path: Path) -> None:
    write(config_dir, "config:\n  storage_base_path: /does/not/exist\n  destination_bucket: b-1\n")
    with pytest.raises(ConfigError, match=r"does not exist\. Fix: point it at the directory"):
        config_for_run().check_storage()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    write(config_dir, f"config:\n  storage_base_path: {a_file}\n  destination_bucket: b-1\n")
    with pytest.raises(ConfigError, match="is not a directory"):
        config_for_run().check_storage()
