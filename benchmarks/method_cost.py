"""Time per training step and peak memory of every method as the number of tasks grows.

Usage: python benchmarks/method_cost.py [--tasks 2 5 10 20 40] [--spec resnet8-x0.5]
                                        [--batch 64] [--out docs/figures]
                                        [--methods NAME ...] [--keep] [--clock cpu]

CelebA-like setting: T binary heads on one encoder, random 32×32 images. Each (method, T) runs
in a fresh subprocess (so peak memory is its own): after two warm-up steps, the median time of
the next steps, and the growth of the peak resident set size (ru_maxrss) over the memory held
before the first step. Both are printed as ratios to static scalarization at the same T,
measured in the same run; a CSV and a figure are written to --out. Every registered method is
measured unless --methods names some (static is always measured, as the reference); --keep
keeps the other methods' rows of the CSV already in --out (each row's ratios stay against the
static of its own measurement; static's row is the latest).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(method: str, n_tasks: int, spec: str, batch: int, steps: int, clock: str = "wall"
            ) -> dict[str, float]:
    """Runs inside the subprocess; ``clock``: wall time, or the CPU time of the process on one
    thread, which other work on a shared machine inflates much less (with several threads,
    threads that spin waiting for a descheduled one count too)."""
    import torch
    import torch.nn.functional as F

    from scalarize.methods import StepContext, build_method
    from scalarize.models import build_model

    if clock == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(spec, (3, 32, 32), {f"t{i}": 2 for i in range(n_tasks)})
    algo = build_method(method, {}, n_objectives=n_tasks)
    optimizer = torch.optim.AdamW([*model.parameters(), *algo.parameters()], lr=1e-3)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 2, (n_tasks, batch))
    weights = torch.full((n_tasks,), 1.0 / n_tasks)
    heads = list(model.heads.values())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def per_example(features: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.cross_entropy(h(features), y[i], reduction="none")
                            for i, h in enumerate(heads)])

    def step(k: int) -> None:
        features = model(x)
        losses = per_example(features).mean(dim=1)
        optimizer.zero_grad(set_to_none=True)
        # the batch's re-evaluation and the lr: what Auto-Lambda's look-ahead takes
        algo.backward(losses, weights, StepContext(
            model, model.shared_parameters(), features, k,
            per_example=lambda: per_example(model(x)), lr=1e-3))
        optimizer.step()
        algo.after_step(lambda: losses.detach())

    now = time.perf_counter if clock == "wall" else time.process_time
    times = []
    for k in range(steps + 2):
        start = now()
        step(k)
        times.append(now() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"step_ms": 1000 * statistics.median(times[2:]), "extra_mb": (peak - before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 5, 10, 20, 40])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--spec", default="resnet8-x0.5")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time steps by the wall clock or by the process's CPU time on "
                             "one thread (steadier on a machine other work shares)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the rows of methods not measured now from --out's CSV")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, n_tasks = args.child.split(":")
        print(json.dumps(measure(method, int(n_tasks), args.spec, args.batch, args.steps,
                                 args.clock)))
        return

    import pandas as pd

    from scalarize.methods import METHODS
    from scalarize.report.figures import plt, save_figure

    methods = args.methods or METHODS.names()
    rows = []
    for n_tasks in args.tasks:
        for method in ["static", *[m for m in methods if m != "static"]]:
            cmd = [sys.executable, __file__, "--child", f"{method}:{n_tasks}", "--spec",
                   args.spec, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--clock", args.clock]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{method} T={n_tasks}: failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            rows.append({"method": method, "tasks": n_tasks,
                         **json.loads(proc.stdout.strip().splitlines()[-1])})
            print(f"T={n_tasks:2d} {method:12s} {rows[-1]['step_ms']:9.1f} ms "
                  f"{rows[-1]['extra_mb']:8.1f} MB", flush=True)
    frame = pd.DataFrame(rows)
    static = frame[frame.method == "static"].set_index("tasks")
    frame["time_ratio"] = frame.step_ms / frame.tasks.map(static.step_ms)
    frame["memory_ratio"] = frame.extra_mb / frame.tasks.map(static.extra_mb)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.keep and (out / "method_cost.csv").exists():
        kept = pd.read_csv(out / "method_cost.csv")
        kept = kept[~kept.method.isin(frame.method)]
        frame = pd.concat([frame, kept], ignore_index=True)
    frame.to_csv(out / "method_cost.csv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for method, group in frame.groupby("method"):
        axes[0].plot(group.tasks, group.time_ratio, marker="o", label=method)
        axes[1].plot(group.tasks, group.extra_mb, marker="o", label=method)
    axes[0].set_ylabel("time per step / static")
    axes[1].set_ylabel("peak memory growth during training (MB)")
    for ax in axes:
        ax.set_xlabel("number of tasks T")
        ax.set_xscale("log")
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7, ncol=2)
    save_figure(fig, out / "method_cost.png")
    print(f"\nmodel {args.spec}, batch {args.batch}, median of {args.steps} steps "
          f"({args.clock} clock)")
    for column in ("time_ratio", "memory_ratio"):
        table = frame.pivot(index="method", columns="tasks", values=column)
        print(f"\n{column} (vs static at the same T)")
        print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nwrote {out / 'method_cost.csv'} and {out / 'method_cost.png'}")


if __name__ == "__main__":
    main()
