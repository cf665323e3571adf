"""What the benchmarks share: the environment the tests get (services + the connections of
airflow_settings.yaml as AIRFLOW_CONN_*), a private moto per timed run, CPU accounting per process,
the load check, and the AWS CLI they compare against, in its own venv under .state/tools.

The CLI pins its own botocore, which conflicts with the project's boto3 pin, so it never goes into
the project's venv.

A benchmark never restarts the shared moto (other checkouts' tests use it): it starts its own
`moto_server` on a free loopback port and defines the connection `bench_s3`, a copy of `aws_default`
pointing at it. Ceph RGW and PostgreSQL are shared; the benchmarks use their own buckets and schema.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".state" / "tools" / "awscli"
AWSCLI_PIN = "awscli==1.46.2"
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def ensure_awscli() -> Path:
    """Path of the `aws` executable, installed on first use."""
    aws = TOOLS / "bin" / "aws"
    if aws.exists():
        return aws
    print(f"installing {AWSCLI_PIN} into {TOOLS} ...", flush=True)
    TOOLS.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv") or str(ROOT / ".state" / "bootstrap" / "bin" / "uv")
    if Path(uv).exists():
        subprocess.run(
            [uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(TOOLS)], check=True
        )
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(TOOLS / "bin" / "python"), AWSCLI_PIN], check=True
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", AWSCLI_PIN], check=True)
    return aws


def services(*args: str) -> str:
    """Run `scripts/services ARGS...` (e.g. "env", "ceph-gc"); its stdout. Fails with its stderr."""
    proc = subprocess.run(["bash", str(ROOT / "scripts/services"), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"scripts/services {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def load_env() -> None:
    """What tests/conftest.py sets up: `scripts/services env`, then AIRFLOW_CONN_<ID> for every
    connection in airflow_settings.yaml (values already in the environment win). Also turns SIGTERM
    into an exit, so a stopped benchmark still stops the moto servers it started."""
    from datamover.settings_loader import connections_env

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for line in services("env").splitlines():
        if line.startswith("export "):
            for assignment in shlex.split(line[len("export ") :]):
                key, _, value = assignment.partition("=")
                os.environ.setdefault(key, value)
    for key, value in connections_env(ROOT / "airflow_settings.yaml").items():
        os.environ.setdefault(key, value)


def connection(conn_id: str) -> dict[str, Any]:
    """The JSON form of connection `conn_id` from the environment (AIRFLOW_CONN_<ID>)."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw is None:
        raise SystemExit(f"connection {conn_id!r} is not defined (airflow_settings.yaml / AIRFLOW_CONN_*)")
    return json.loads(raw)


def derive_connection(new_id: str, from_id: str, **extra: Any) -> str:
    """Define `new_id` as a copy of `from_id` with `extra` entries replaced; returns the new id."""
    conn = connection(from_id)
    conn["extra"] = {**(conn.get("extra") or {}), **extra}
    os.environ[f"AIRFLOW_CONN_{new_id.upper()}"] = json.dumps(conn)
    return new_id


def tool_credentials(conn_id: str) -> dict[str, str]:
    """Environment for the other tools (aws, s5cmd): the connection's keys, endpoint and region."""
    conn = connection(conn_id)
    extra = conn.get("extra") or {}
    return {
        "AWS_ACCESS_KEY_ID": conn.get("login") or "",
        "AWS_SECRET_ACCESS_KEY": conn.get("password") or "",
        "AWS_DEFAULT_REGION": extra.get("region_name", "us-east-1"),
        "AWS_REGION": extra.get("region_name", "us-east-1"),
        "ENDPOINT": extra.get("endpoint_url", ""),
    }


# -- CPU accounting -------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads), 0.0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, of its children that exited (reaped) and of its live children: for a
    postmaster, every backend, also those of connections closed meanwhile."""
    import psutil

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = psutil.Process(pid).children()
    except (OSError, psutil.NoSuchProcess):
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / CLK_TCK  # utime, stime, cutime, cstime
    return own + sum(cpu_seconds(child.pid) for child in children)


def ceph_pids() -> dict[str, int]:
    """The shared Ceph's radosgw and ceph-osd pids (from the services' pid files)."""
    run = Path(os.environ.get("DATAMOVER_SERVICES_DIR", ROOT / ".state" / "services")) / "ceph" / "run"
    pids = {}
    for name, daemon in (("radosgw", "rgw"), ("ceph-osd", "osd")):
        with_pid = run / f"{daemon}.pid"
        if with_pid.exists():
            pids[name] = int(with_pid.read_text().strip())
    return pids


class CpuMeter:
    """CPU seconds spent by named processes between `start()` and `stop()`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self._before.get(name, 0.0) for name, pid in self.pids.items()}


class ChildCpu:
    """CPU seconds of the child processes waited for between `start()` and `stop()` (a tool's own CPU)."""

    def start(self) -> ChildCpu:
        self._before = os.times()
        return self

    def stop(self) -> float:
        after = os.times()
        return (after.children_user - self._before.children_user) + (
            after.children_system - self._before.children_system
        )


def cpu_text(cpu: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())


# -- load ---------------------------------------------------------------------------------------------
def load_average() -> float:
    return os.getloadavg()[0]


def load_note() -> str:
    one, five, _ = os.getloadavg()
    quiet = "quiet" if one < 1.0 else "NOT quiet: wall-clock figures are not comparable"
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min): {quiet}"


def machine_line() -> str:
    return f"machine: {os.cpu_count()} cores; {load_note()}"


# -- a private moto -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateMoto:
    """A moto server of the benchmark's own, on a free loopback port: moto keeps every object in RAM
    and slows as it fills, so each timed run can meet a fresh one without touching the shared moto.
    `conn_id` names a copy of `aws_default` that points at it."""

    def __init__(self, conn_id: str = "bench_s3", from_conn: str = "aws_default") -> None:
        self.conn_id = conn_id
        self.from_conn = from_conn
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = ROOT / ".state" / "bench" / f"moto-{conn_id}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> PrivateMoto:
        self.stop()
        self.port = self.port or free_port()  # a restart keeps the port: the tools' command lines name it
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"moto_server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        else:
            raise SystemExit(f"moto_server did not answer on port {self.port}")
        derive_connection(self.conn_id, self.from_conn, endpoint_url=self.endpoint)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> PrivateMoto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def empty_bucket(client: Any, bucket: str, prefix: str = "") -> None:
    """Abort unfinished uploads and delete every object under `prefix`."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for up in page.get("Uploads", ()):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def ensure_bucket(client: Any, bucket: str) -> None:
    from datamover.s3 import create_bucket

    create_bucket(client, bucket)


def best(values: Iterable[float]) -> float:
    return min(values)
