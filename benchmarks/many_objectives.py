"""Search outputs at many objectives: how long it takes to summarise, analyse and report a
finished search of T objectives (target: at most 10 s per step at T = 40).

Usage: python benchmarks/many_objectives.py [--objectives 2 10 40] [--population 16]
       [--epochs 6] [--repeats 1] [--out /tmp/many_objectives]

Setup, per T and outside the timing (kept in --out, so a second run reuses it): a finished
PBT search of ``configs/many/mtl40.yaml`` (shapes' 40 CelebA-like binary attributes, the first
T of them through ``benchmark.tasks``; 200 training, 100 held-out, 200 test images,
--population members of --epochs epochs, exploiting every epoch: by default the 96
member-epochs and 5 exploit rounds of a search of the many-objective study), and, because
``scalarize analyze capacity`` reads a capacity sweep
(``sweep.json`` and its runs) rather than a search, a tiny sweep of the same data and T: two
capacities (resnet8 ×0.25 and ×0.5), uniform and two random weightings, the T single-task
baselines, one seed, one epoch. Both run one member or run at a time
(``SCALARIZE_JOBS=1``).

Timed per T (the median of --repeats):

* ``summary``: :func:`scalarize.search.results.search_summary` over the members of the
  search's ``summary.json`` (selection, Pareto front, hypervolumes), in this process;
* ``analyze search``: ``scalarize analyze search DIR``, a subprocess, wall clock (so with the
  interpreter's start and imports, as a user sees it);
* ``analyze capacity``: ``scalarize analyze capacity SWEEP`` on the sweep, a subprocess;
* ``report``: ``scalarize report DIR`` (tables and figures), a subprocess.

Prints a table of T × step in seconds and, per step, whether the 10 s target at T = 40 is
met; writes the measurements to ``--out/many_objectives.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scalarize.benchmarks.shapes_attributes import ATTRIBUTES
from scalarize.runs.store import SearchDir
from scalarize.search.results import search_summary

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs" / "many" / "mtl40.yaml"
TARGET_T, TARGET_SECONDS = 40, 10.0
STEPS = ["summary", "analyze search", "analyze capacity", "report"]
DATA = "{attributes: true, n_train: 200, n_val: 100, n_test: 200, image_size: 16}"
SWEEP = """seed: 0
benchmark: {{name: shapes, view: mtl, tasks: [{tasks}], options: {data}}}
model: {{spec: resnet8-x0.25}}
train: {{epochs: 1, batch_size: 64, lr: 3.0e-3, device: cpu, threads: 1}}
sweep:
  capacities: [resnet8-x0.25, resnet8-x0.5]
  weights: {{random: 2}}
  single_task: true
  seeds: [0]
"""


def scalarize(*argv: str) -> float:
    """Seconds of ``scalarize ARGV`` in a subprocess (output discarded; a failure raises)."""
    script = Path(sys.executable).with_name("scalarize")
    command = [str(script) if script.exists() else shutil.which("scalarize") or "scalarize",
               *argv]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def prepare(t: int, population: int, epochs: int, out: Path) -> tuple[Path, Path]:
    """The finished search and sweep of ``t`` objectives under ``out`` (made when missing)."""
    tasks = [a.name for a in ATTRIBUTES[:t]]
    search = out / f"T{t}" / f"search-p{population}-e{epochs}"
    sweep = out / f"T{t}" / "sweep"
    if not SearchDir(search).is_finished:
        print(f"setup: search of {t} objectives, {population} members ...", flush=True)
        scalarize("search", str(PRESET), f"benchmark.tasks=[{', '.join(tasks)}]",
                  f"benchmark.options={DATA}", f"train.epochs={epochs}",
                  f"search.population={population}", "--out", str(search), "--quiet")
    if not (sweep / "done").exists():
        print(f"setup: sweep of {t} objectives ({2 * (3 + t)} runs) ...", flush=True)
        sweep.mkdir(parents=True, exist_ok=True)
        config = sweep.parent / "sweep.yaml"
        config.write_text(SWEEP.format(tasks=", ".join(tasks), data=DATA))
        scalarize("sweep", str(config), "--out", str(sweep), "--quiet")
        (sweep / "done").write_text("")
    return search, sweep


def time_summary(search: Path) -> float:
    """Seconds of :func:`search_summary` over the members of ``search``'s summary."""
    old = SearchDir(search).read_summary()
    start = time.perf_counter()
    search_summary(old.strategy, old.engine, old.objectives, old.epochs, old.members,
                   old.seconds)
    return time.perf_counter() - start


def measure(search: Path, sweep: Path, repeats: int) -> dict[str, float]:
    """The median seconds of each step over ``repeats``."""
    steps = {"summary": lambda: time_summary(search),
             "analyze search": lambda: scalarize("analyze", "search", str(search)),
             "analyze capacity": lambda: scalarize("analyze", "capacity", str(sweep)),
             "report": lambda: scalarize("report", str(search))}
    return {name: statistics.median(step() for _ in range(repeats))
            for name, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objectives", type=int, nargs="+", default=[2, 10, 40])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/many_objectives"))
    args = parser.parse_args()
    if not all(2 <= t <= len(ATTRIBUTES) for t in args.objectives):
        parser.error(f"--objectives must be between 2 and {len(ATTRIBUTES)}")
    os.environ.setdefault("SCALARIZE_JOBS", "1")
    command = (f"$ python benchmarks/many_objectives.py --objectives "
               f"{' '.join(map(str, args.objectives))} --population {args.population} "
               f"--epochs {args.epochs} "
               f"--repeats {args.repeats} --out {args.out}")
    folders = {t: prepare(t, args.population, args.epochs, args.out) for t in args.objectives}
    results = {t: measure(*folders[t], args.repeats) for t in args.objectives}
    print(command)
    print(f"{args.population}-member PBT searches of {args.epochs} epochs; 'analyze capacity' "
          "timed on a tiny capacity sweep at the same T (2 capacities × (3 weightings + T "
          "single-task runs)), since it reads sweeps, not searches")
    print("| objectives | " + " | ".join(f"{s} s" for s in STEPS) + " |")
    print("|---" * (len(STEPS) + 1) + "|")
    for t, seconds in results.items():
        print(f"| {t} | " + " | ".join(f"{seconds[s]:.2f}" for s in STEPS) + " |")
    if TARGET_T in results:
        for step in STEPS:
            seconds = results[TARGET_T][step]
            verdict = "met" if seconds <= TARGET_SECONDS else "NOT met"
            print(f"target ≤ {TARGET_SECONDS:.0f} s at T={TARGET_T}: {step}: {verdict} "
                  f"({seconds:.2f} s)")
    path = args.out / "many_objectives.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["objectives", "step", "seconds", "repeats", "population"])
        for t, seconds in results.items():
            writer.writerows([t, s, f"{seconds[s]:.4f}", args.repeats, args.population]
                             for s in STEPS)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
