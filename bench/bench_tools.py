"""What the benchmarks share: the project's services script, and the AWS CLI they compare against, in
its own venv under .state/tools.

The CLI pins its own botocore, which conflicts with the project's boto3 pin, so it never goes into
the project's venv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".state" / "tools" / "awscli"
AWSCLI_PIN = "awscli==1.46.2"


def ensure_awscli() -> Path:
    """Path of the `aws` executable, installed on first use."""
    aws = TOOLS / "bin" / "aws"
    if aws.exists():
        return aws
    print(f"installing {AWSCLI_PIN} into {TOOLS} ...", flush=True)
    TOOLS.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("uv"):
        subprocess.run(
            ["uv", "venv", "-q", "--allow-existing", "--python", sys.executable, str(TOOLS)], check=True
        )
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(TOOLS / "bin" / "python"), AWSCLI_PIN], check=True
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", AWSCLI_PIN], check=True)
    return aws


def services(*args: str) -> str:
    """Run `scripts/services ARGS...` (e.g. "down", "moto"); its stdout. Fails with its stderr."""
    proc = subprocess.run(["bash", str(ROOT / "scripts/services"), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"scripts/services {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout
