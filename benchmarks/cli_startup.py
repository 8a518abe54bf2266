"""Start-up cost of the read-only commands: ``scalarize report DIR`` and ``scalarize analyze
capacity DIR``, for this checkout and, side by side in the same run, another one (e.g. a clone
of an earlier commit).

Usage: python benchmarks/cli_startup.py DIR [--other-src /path/to/old/src] [--repeats 5]

``DIR`` is a finished sweep folder (``make demo`` leaves one in ``demo-runs``). For each source
tree the script alternates the commands ``--repeats`` times, each in a fresh interpreter, and
prints the median wall time of: importing what the command imports (``import`` only), the whole
``analyze capacity`` command, and the whole ``report`` command (figures written to a temporary
folder), plus whether the command's imports pulled in torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = ("import sys, scalarize.cli, scalarize.report, scalarize.analysis; "
           "print('torch' in sys.modules)")


def _timed(args: list[str], src: str) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=src)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def measure(folder: str, src: str, repeats: int) -> dict[str, object]:
    cli = [sys.executable, "-m", "scalarize.cli"]
    times: dict[str, list[float]] = {"import": [], "analyze capacity": [], "report": []}
    torch_loaded = ""
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeats):
            seconds, torch_loaded = _timed([sys.executable, "-c", IMPORTS], src)
            times["import"].append(seconds)
            times["analyze capacity"].append(_timed([*cli, "analyze", "capacity", folder],
                                                    src)[0])
            times["report"].append(_timed([*cli, "report", folder, "--out", out], src)[0])
    return {"src": src, "torch_imported": torch_loaded == "True",
            **{name: statistics.median(values) for name, values in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a finished sweep folder")
    parser.add_argument("--other-src", help="src/ of another checkout, measured alongside")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parents[1] / "src")
    rows = [measure(args.dir, src, args.repeats)
            for src in ([args.other_src] if args.other_src else []) + [here]]
    print(f"command: python benchmarks/cli_startup.py {args.dir} "
          f"{'--other-src ' + args.other_src + ' ' if args.other_src else ''}"
          f"--repeats {args.repeats}")
    print(f"{'source':40s} {'torch?':>6s} {'import':>8s} {'analyze':>8s} {'report':>8s}  "
          "(median seconds)")
    for row in rows:
        print(f"{row['src']:40s} {row['torch_imported']!s:>6s} {row['import']:8.2f} "
              f"{row['analyze capacity']:8.2f} {row['report']:8.2f}")
    if len(rows) == 2:
        old, new = rows
        print("ratio new/old: " + ", ".join(
            f"{k} {new[k] / old[k]:.2f}" for k in ("import", "analyze capacity", "report")))


if __name__ == "__main__":
    main()
