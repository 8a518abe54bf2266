"""Cost of the search engines: the same small search (population 8) on the local engine (and,
with ``--engines local ray``, on Ray) against the bare training time of the same member-epochs.

Usage: python benchmarks/search_engines.py [--engines local] [--strategies pbt]
       [--epochs 4] [--interval 1] [--target 0.03] [--min-repeats 5] [--max-repeats 15]
       [--max-minutes 20]

Each measurement runs in a fresh subprocess (Ray's start-up is part of its cost). One *round*
runs bare and every (engine, strategy) once, in an order rotated from round to round so that a
slow drift of the machine falls on every mode alike; each round gives one paired ratio
engine / bare per (engine, strategy). Rounds repeat until the interquartile range of every
ratio is narrower than ``--target`` (after at least ``--min-repeats`` rounds), or
``--max-repeats`` rounds or ``--max-minutes`` have passed; the median ratio, its IQR and a
distribution-free 95% interval of the median (order statistics, from 6 rounds) are printed.

*Bare* builds the 8 members' trainers on the same held-out split and trains each for the same
epochs (with the same per-epoch validation) in a plain loop, then evaluates each on test: no
ranking, exploit, explore, logging or state files. (For a strategy that stops members early,
bare still trains every member for every epoch: compare such strategies by their own
member-epochs.) Peak memory: the subprocess's peak resident set (ru_maxrss) for bare and local;
for Ray, the peak of the summed resident sets of the driver and every Ray process (GCS,
raylet, workers), sampled from /proc every 0.2 s (Linux).

Besides wall time, each local measurement reports its process CPU time (user + system, every
thread of the subprocess): a ratio that other jobs on the machine disturb far less than wall
time. Ray's members train in other processes, so Ray has wall time only. ``--clock cpu``
applies the stopping rule to the CPU-time ratio instead of wall time.

Every measurement works in a temporary folder inside one the script holds for its whole run
and removes at the end, also when a measurement fails or the script is interrupted (Ctrl-C,
SIGTERM), so nothing is left in the temporary directory; the script checks and says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
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
    "search.population=8",
]
PREFIX = "bench-search-"


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


def measure(mode: str, strategy: str, epochs: int, interval: int, root: str | None
            ) -> dict[str, float]:
    """Runs inside the subprocess: one bare loop or one search, timed, in a temporary folder
    (inside ``root``) that is removed at the end."""
    with tempfile.TemporaryDirectory(prefix=PREFIX, dir=root) as tmp:
        return _measure(Path(tmp), mode, strategy, epochs, interval)


def _measure(folder: Path, mode: str, strategy: str, epochs: int, interval: int
             ) -> dict[str, float]:
    from scalarize.search.decide import initial_points
    from scalarize.search.member import Member, search_data
    from scalarize.search.resolve import resolve_strategy
    from scalarize.search.spec import load_search_config
    from scalarize.studies.runner import run_search

    (folder / "c.yaml").write_text("seed: 0\nsearch: {}\n")
    config = load_search_config(folder / "c.yaml", [*CONFIG, f"search.strategy={strategy}",
                                                    f"train.epochs={epochs}",
                                                    f"search.interval={interval}"])
    peak = {"ray": 0}
    stop = threading.Event()
    if mode == "ray":
        def sample() -> None:
            while not stop.is_set():
                peak["ray"] = max(peak["ray"], _rss_of_ray_processes(os.getpid()))
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "bare":
        data = search_data(config)
        points = initial_points(config, data.objectives,
                                resolve_strategy(config.search).strategy)
        trainers = [Member.build(config, data, i, p).trainer for i, p in enumerate(points)]
        for trainer in trainers:
            trainer.train_epochs(epochs)
        for trainer in trainers:
            trainer.evaluate("test")
    else:
        run_search(config, folder / "out", engine=mode, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    stop.set()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "cpu_seconds": cpu if mode != "ray" else float("nan"),
            "peak_mb": max(rss, peak["ray"]) / 2**20}


def run(mode: str, strategy: str, epochs: int, interval: int, root: str) -> dict[str, float]:
    """One measurement in a fresh subprocess; interrupted, the subprocess gets SIGINT (its
    temporary folder is removed) and a few seconds to end before it is killed."""
    with subprocess.Popen([sys.executable, __file__, "--child", mode, "--strategies", strategy,
                           "--epochs", str(epochs), "--interval", str(interval), "--tmp", root],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            stdout, stderr = child.communicate()
        except BaseException:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    if child.returncode != 0:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"the {mode} measurement failed (exit {child.returncode}): {tail}")
    return json.loads(stdout.strip().splitlines()[-1])


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: end as Ctrl-C does, removing the temporary folders


def iqr(values: list[float]) -> tuple[float, float]:
    """First and third quartiles (the inclusive method: the sample's own quartiles)."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval of the median: the order statistics ``(x_(j), x_(n-j+1))``
    with the largest ``j`` whose binomial coverage is at least ``level`` (``None`` below 6
    values, where no such pair exists at 95%)."""
    n, ordered = len(values), sorted(values)
    best = None
    for j in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n
        if coverage >= level:
            best = (ordered[j - 1], ordered[n - j])
    return best


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}*")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", choices=["local", "ray"], default=["local"])
    parser.add_argument("--strategies", nargs="+", default=["pbt"],
                        help="registered search strategies to time (default: pbt)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--interval", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.03,
                        help="stop when every ratio's IQR is narrower than this (0.03 = 3%%)")
    parser.add_argument("--min-repeats", type=int, default=5)
    parser.add_argument("--max-repeats", type=int, default=15)
    parser.add_argument("--max-minutes", type=float, default=20.0,
                        help="start no new round after this long")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="the time whose ratio must reach the target (cpu: local only)")
    parser.add_argument("--child", choices=["bare", "local", "ray"])
    parser.add_argument("--tmp", help=argparse.SUPPRESS)  # the parent's temporary folder
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.strategies[0], args.epochs, args.interval,
                                 args.tmp)))
        return
    if args.clock == "cpu" and "ray" in args.engines:
        parser.error("--clock cpu times the local engine only (Ray's members train in other "
                     "processes)")
    signal.signal(signal.SIGTERM, _terminate)
    before = _leftovers()
    try:
        with tempfile.TemporaryDirectory(prefix=PREFIX) as root:
            _study(args, root)
    except KeyboardInterrupt:
        left = _leftovers() - before
        sys.exit(f"interrupted; temporary folders left behind: {len(left)}")
    left = _leftovers() - before
    print(f"temporary folders left behind: {len(left)}" + (f" ({sorted(left)})" if left else ""))


def _study(args: argparse.Namespace, root: str) -> None:
    """Interleaved rounds until the ratios' IQR is narrow enough; prints the figures."""
    modes = [("bare", "-"), *[(e, s) for e in args.engines for s in args.strategies]]
    seconds: dict[tuple[str, str], list[float]] = {m: [] for m in modes}
    cpu: dict[tuple[str, str], list[float]] = {m: [] for m in modes}
    peaks: dict[tuple[str, str], list[float]] = {m: [] for m in modes}
    ratios: dict[tuple[str, str], list[float]] = {m: [] for m in modes[1:]}
    cpu_ratios: dict[tuple[str, str], list[float]] = {m: [] for m in modes[1:] if m[0] != "ray"}
    start = time.perf_counter()
    rounds = 0
    while rounds < args.max_repeats:
        order = modes[rounds % len(modes):] + modes[:rounds % len(modes)]
        for mode, strategy in order:
            result = run(mode, strategy if mode != "bare" else args.strategies[0], args.epochs,
                         args.interval, root)
            seconds[(mode, strategy)].append(result["seconds"])
            cpu[(mode, strategy)].append(result["cpu_seconds"])
            peaks[(mode, strategy)].append(result["peak_mb"])
        rounds += 1
        bare = seconds[modes[0]][-1]
        for key in ratios:
            ratios[key].append(seconds[key][-1] / bare)
        for key in cpu_ratios:
            cpu_ratios[key].append(cpu[key][-1] / cpu[modes[0]][-1])
        ruled = cpu_ratios if args.clock == "cpu" else ratios
        widths = {k: iqr(r)[1] - iqr(r)[0] for k, r in ruled.items()}
        shown = "  ".join(f"{m}/{s} {r[-1]:.3f}" for (m, s), r in ratios.items())
        shown_cpu = "  ".join(f"{m}/{s} {r[-1]:.3f}" for (m, s), r in cpu_ratios.items())
        print(f"round {rounds}: bare {bare:.1f} s  wall ratios {shown}  cpu ratios {shown_cpu}"
              f"  ({args.clock} IQR {max(widths.values()):.3f})", file=sys.stderr, flush=True)
        if rounds >= args.min_repeats and all(w < args.target for w in widths.values()):
            break
        if time.perf_counter() - start > 60 * args.max_minutes:
            print(f"stopped after {args.max_minutes:g} minutes", file=sys.stderr)
            break
    strategies = ", ".join(args.strategies)
    print(f"{strategies}, population 8 × {args.epochs} epochs (exploit/explore every "
          f"{args.interval}), shapes shape+count, resnet8-x0.25, 1 torch thread per member; "
          f"{rounds} interleaved rounds in {(time.perf_counter() - start) / 60:.1f} min")
    for key in modes:
        runs = ", ".join(f"{s:.1f}" for s in seconds[key])
        label = key[0] if key[0] == "bare" else f"{key[0]} {key[1]}"
        cpu_median = (f"   CPU {statistics.median(cpu[key]):6.1f} s" if key[0] != "ray"
                      else "")
        print(f"{label:>12}: median {statistics.median(seconds[key]):6.1f} s{cpu_median}   "
              f"peak memory {max(peaks[key]):,.0f} MB   ({runs})")
    for clock, table in (("wall", ratios), ("CPU", cpu_ratios)):
        for (mode, strategy), values in table.items():
            med = statistics.median(values)
            q1, q3 = iqr(values)
            ci = median_interval(values)
            interval = (f"; 95% interval of the median {ci[0]:.3f}..{ci[1]:.3f}" if ci else "")
            verdict = "narrower than" if q3 - q1 < args.target else "NOT narrower than"
            print(f"{clock:>4} {mode} {strategy} / bare: median {med:.3f} (overhead "
                  f"{100 * (med - 1):+.1f}%), IQR {q1:.3f}..{q3:.3f} = {q3 - q1:.3f}, {verdict} "
                  f"the target {args.target:g}{interval}")


if __name__ == "__main__":
    main()
