"""Hypervolume time against the number of objectives: Optuna's WFG (what
``scalarize.analysis.pareto.hypervolume`` uses) beside the slicing recursion it replaced.

Usage: python benchmarks/hypervolume_speed.py [--points 16] [--objectives 2 5 10 12 20 40]
       [--slicing-up-to 10]

Points are a population's held-out scores: uniform in [0.3, 0.9] per objective, seeded. The
slicing recursion (exponential in the number of objectives) is timed only up to
``--slicing-up-to`` objectives.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scalarize.analysis.pareto import hypervolume


def slicing(points: np.ndarray, ref: np.ndarray) -> float:
    """The exact slicing recursion scalarize used before (O(n^d))."""
    if points.shape[1] == 1:
        return float(points[:, 0].max() - ref[0])
    points = points[np.argsort(-points[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(points)):
        lower = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        height = points[i, -1] - lower
        if height > 0:
            volume += height * slicing(points[:i + 1, :-1], ref[:-1])
    return volume


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--objectives", type=int, nargs="+", default=[2, 5, 10, 12, 20, 40])
    parser.add_argument("--slicing-up-to", type=int, default=10)
    args = parser.parse_args()
    print(f"$ python benchmarks/hypervolume_speed.py --points {args.points} --objectives "
          f"{' '.join(map(str, args.objectives))} --slicing-up-to {args.slicing_up_to}")
    print("| objectives | WFG (Optuna) s | slicing s | same value |")
    print("|---|---|---|---|")
    for d in args.objectives:
        points = np.random.default_rng(d).uniform(0.3, 0.9, size=(args.points, d))
        value, seconds = timed(hypervolume, points)
        if d <= args.slicing_up_to:
            old, old_seconds = timed(slicing, points, np.zeros(d))
            same = "yes" if np.isclose(value, old, rtol=1e-9, atol=0) else f"no ({old})"
            print(f"| {d} | {seconds:.3f} | {old_seconds:.3f} | {same} |", flush=True)
        else:
            print(f"| {d} | {seconds:.3f} | not run | — |", flush=True)


if __name__ == "__main__":
    main()
