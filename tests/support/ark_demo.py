"""Generate a folder of sample Ark Logs plus one example of each kind of non-Ark data (idempotent).

python -m tests.support.ark_demo DIR [--scale 1.0]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from tests.support.ark_samples import generate_junk, generate_log

MB = 1_000_000

# name -> data file sizes: a few mixes of big segments and small side files (camera, lidar, can, ...)
DEMO_LOGS: dict[str, list[int]] = {
    "ark_20261120T0800_vehicle07": [48 * MB, 2 * MB, 2 * MB, 350_000],
    "ark_20261120T1015_vehicle07": [24 * MB, 24 * MB, 1_200_000],
    "ark_20261121T0930_vehicle11": [8 * MB] + [400_000] * 10,
    "ark_20261122T1400_vehicle11": [40 * MB],
}


def generate_demo(base: str | Path, scale: float = 1.0) -> list[str]:
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    for i, (name, sizes) in enumerate(DEMO_LOGS.items()):
        start = datetime.strptime(name.split("_")[1], "%Y%m%dT%H%M").replace(tzinfo=UTC)
        sizes = [max(1, int(s * scale)) for s in sizes]
        generate_log(base, name, sizes, start_time=start, duration_s=1800.0 + 600 * i, seed=i + 1)
    generate_junk(base)
    return list(DEMO_LOGS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    names = generate_demo(args.directory, args.scale)
    print(f"{len(names)} sample Ark Logs (+ non-Ark junk) in {args.directory}")


if __name__ == "__main__":
    main()
