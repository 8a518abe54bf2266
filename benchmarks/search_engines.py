"""Cost of the search engines: the same small PBT (population 8) on the local and the Ray engine,
against the bare training time of the same member-epochs.

Usage: python benchmarks/search_engines.py [--repeats 3] [--epochs 4] [--interval 1]

Each measurement runs in a fresh subprocess (Ray's start-up is part of its cost), alternating
bare / local / Ray ``--repeats`` times; the medians are compared. *Bare* builds the 8 members'
trainers on the same held-out split and trains each for the same epochs (with the same per-epoch
validation) in a plain loop: no ranking, exploit, explore, logging or state files. Peak memory:
the subprocess's peak resident set (ru_maxrss) for bare and local; for Ray, the peak of the
summed resident sets of the driver and every Ray process (GCS, raylet, workers), sampled from
/proc every 0.2 s (Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CONFIG = [
    "benchmark.tasks=[shape, count]",
    "benchmark.options={n_train: 1500, n_val: 100, n_test: 500}",
    "model.spec=resnet8-x0.25", "train.batch_size=128", "train.device=cpu", "train.threads=1",
    "search.population=8", "search.strategy=pbt",
]


def _rss_of_ray_processes(root_pid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if int(entry) != root_pid and b"ray" not in cmd:
                continue
            pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        total += pages * os.sysconf("SC_PAGE_SIZE")
    return total


def measure(mode: str, epochs: int, interval: int) -> dict[str, float]:
    """Runs inside the subprocess."""
    from scalarize.search.decide import initial_points
    from scalarize.search.executors import run_search
    from scalarize.search.member import Member, search_data
    from scalarize.search.spec import load_search_config

    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    (folder / "c.yaml").write_text("seed: 0\nsearch: {}\n")
    config = load_search_config(folder / "c.yaml", [*CONFIG, f"train.epochs={epochs}",
                                                    f"search.interval={interval}"])
    peak = {"ray": 0}
    stop = threading.Event()
    if mode == "ray":
        def sample() -> None:
            while not stop.is_set():
                peak["ray"] = max(peak["ray"], _rss_of_ray_processes(os.getpid()))
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    if mode == "bare":
        data = search_data(config)
        points = initial_points(config, data.objectives)
        trainers = [Member.build(config, data, i, p).trainer for i, p in enumerate(points)]
        for trainer in trainers:
            trainer.train_epochs(epochs)
        for trainer in trainers:
            trainer.evaluate("test")
    else:
        run_search(config, folder / "out", engine=mode, progress=False)
    seconds = time.perf_counter() - start
    stop.set()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_mb": max(rss, peak["ray"]) / 2**20}


def run(mode: str, epochs: int, interval: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--epochs", str(epochs),
                          "--interval", str(interval)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--child", choices=["bare", "local", "ray"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, args.interval)))
        return
    results: dict[str, list[dict[str, float]]] = {"bare": [], "local": [], "ray": []}
    for _ in range(args.repeats):
        for mode in ("bare", "local", "ray"):
            results[mode].append(run(mode, args.epochs, args.interval))
    med = {m: statistics.median(r["seconds"] for r in rs) for m, rs in results.items()}
    mem = {m: max(r["peak_mb"] for r in rs) for m, rs in results.items()}
    print(f"PBT, population 8 × {args.epochs} epochs (exploit/explore every {args.interval}), "
          f"shapes shape+count, resnet8-x0.25, 1 torch thread per member")
    for mode in ("bare", "local", "ray"):
        runs = ", ".join(f"{r['seconds']:.1f}" for r in results[mode])
        print(f"{mode:>5}: {med[mode]:7.1f} s (median of {runs})   peak memory {mem[mode]:,.0f} MB")
    print(f"local / bare: {med['local'] / med['bare']:.3f}  "
          f"(overhead {100 * (med['local'] / med['bare'] - 1):+.1f}%)")
    print(f"ray / bare:   {med['ray'] / med['bare']:.3f}  "
          f"(overhead {100 * (med['ray'] / med['bare'] - 1):+.1f}%)")
    print(f"ray / local:  {med['ray'] / med['local']:.3f}  (target <= 1.25)")


if __name__ == "__main__":
    main()
