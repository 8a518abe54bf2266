"""Compiled against eager training steps per model family and size, and the compile time cold
and warm (``train.compile``, :mod:`scalarize.training.compiling`).

Usage: python benchmarks/compile_speed.py [--specs resnet8-x0.25 ...] [--batch 128]
       [--epochs 6] [--threads 1]

Per model: two trainers from one config (``shapes``, two heads, 24 px; ``deeplab*`` on the
NYUv2 smoke fixture, three dense heads, 24×32), one eager and one compiled, train epochs in turn
(eager, compiled, eager, ...) in one process after a warm-up epoch each, so drifts in machine
speed hit both alike; the step time is the median over epochs and the ratio eager / compiled.
Then the first compiled step in two fresh processes: **cold** (an empty Inductor cache) and
**warm** (that cache again: an architecture compiled before, in another process), minus the
median compiled step: the compile time a run pays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalarize.config import RunConfig, load_config
from scalarize.smoke import smoke_overrides
from scalarize.training import Trainer

SPECS = ["resnet8-x0.25", "resnet8-x1.0", "vit-d3-w48-p4", "deeplab10-x0.125"]


def config(spec: str, batch: int, compiled: bool) -> RunConfig:
    """The benchmark's run config for ``spec``."""
    mode = f"train.compile={'true' if compiled else 'false'}"
    if spec.startswith("deeplab"):
        from scalarize.studies.compare import load_compare_config

        preset = "configs/nyuv2.yaml"
        return load_compare_config(preset, [
            *smoke_overrides(preset), f"model.spec={spec}", mode,
            f"train.batch_size={min(batch, 4)}", "train.device=cpu"]).base()
    return load_config(None, [
        f"model.spec={spec}", f"train.batch_size={batch}", "train.device=cpu", mode,
        "benchmark.tasks=[shape, colour]",
        f"benchmark.options={{n_train: {batch * 8}, n_val: 16, n_test: 16, image_size: 24}}"])


def first_step(spec: str, batch: int, threads: int) -> float:
    """Seconds of the first compiled training step in this (fresh) process."""
    torch.set_num_threads(threads)
    trainer = Trainer(config(spec, batch, compiled=True), progress=False)
    trainer.model.train()
    index = torch.arange(trainer.config.train.batch_size)
    start = time.perf_counter()
    trainer.train_step(index)
    return time.perf_counter() - start


def step_times(spec: str, batch: int, epochs: int, threads: int) -> tuple[float, float]:
    """Median seconds per step, eager and compiled, epochs in turn."""
    torch.set_num_threads(threads)
    eager = Trainer(config(spec, batch, compiled=False), progress=False)
    compiled = Trainer(config(spec, batch, compiled=True), progress=False)
    assert compiled.compiled and not eager.compiled
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(epochs + 1):
        for trainer in (eager, compiled):
            start = time.perf_counter()
            trainer.train_epoch()
            if i:  # the first epoch of each warms up (and compiles)
                times[trainer.compiled].append(
                    (time.perf_counter() - start) / trainer.steps_per_epoch)
    return statistics.median(times[False]), statistics.median(times[True])


def compile_seconds(spec: str, batch: int, threads: int, cache: Path) -> float:
    """The first compiled step in a fresh process using the Inductor cache ``cache``."""
    out = subprocess.run(
        [sys.executable, __file__, "--first-step", spec, "--batch", str(batch),
         "--threads", str(threads)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)})
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", nargs="+", default=SPECS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--first-step", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_step:
        print(json.dumps({"seconds": first_step(args.first_step, args.batch, args.threads)}))
        return
    print(f"$ python benchmarks/compile_speed.py --specs {' '.join(args.specs)} "
          f"--batch {args.batch} --epochs {args.epochs} --threads {args.threads}")
    print("| model | eager ms/step | compiled ms/step | eager / compiled | compile cold s "
          "| compile warm s |")
    print("|---|---|---|---|---|---|")
    for spec in args.specs:
        eager, compiled = step_times(spec, args.batch, args.epochs, args.threads)
        with tempfile.TemporaryDirectory() as cache:
            cold = compile_seconds(spec, args.batch, args.threads, Path(cache)) - compiled
            warm = compile_seconds(spec, args.batch, args.threads, Path(cache)) - compiled
        print(f"| {spec} | {eager * 1e3:.1f} | {compiled * 1e3:.1f} | {eager / compiled:.2f}× "
              f"| {cold:.1f} | {warm:.1f} |", flush=True)


if __name__ == "__main__":
    main()
