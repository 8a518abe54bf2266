"""Hypervolume time and error against the number of objectives and points:
``scalarize.analysis.pareto.hypervolume_with_error`` (Optuna's exact WFG where cheap, else the
Karp–Luby estimate with its standard error) beside Optuna's exact WFG and the slicing
recursion scalarize used first.

Usage: python benchmarks/hypervolume_speed.py [--points 16 96] [--objectives 2 5 10 20 40]
       [--slicing-up-to 10] [--exact-up-to 20]

Points are a population's held-out scores, seeded: per objective a mean uniform in
[0.5, 0.95], each member that plus Gaussian noise of 0.02 (members of a search score close to
each other, so most are non-dominated at many objectives). The slicing recursion (exponential
in the number of objectives) is timed only up to ``--slicing-up-to`` objectives, Optuna's exact
WFG up to ``--exact-up-to`` points × objectives cost (it is exponential too: see the table).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scalarize.analysis.pareto import hypervolume_with_error


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
    parser.add_argument("--points", type=int, nargs="+", default=[16, 96])
    parser.add_argument("--objectives", type=int, nargs="+", default=[2, 5, 10, 20, 40])
    parser.add_argument("--slicing-up-to", type=int, default=10)
    parser.add_argument("--exact-up-to", type=int, default=16,
                        help="run Optuna's exact WFG beyond 5 objectives only up to this many "
                        "points")
    args = parser.parse_args()
    print(f"$ python benchmarks/hypervolume_speed.py --points {' '.join(map(str, args.points))}"
          f" --objectives {' '.join(map(str, args.objectives))} --slicing-up-to "
          f"{args.slicing_up_to} --exact-up-to {args.exact_up_to}")
    print("| points | objectives | hypervolume() s | method | stderr / value | "
          "exact WFG s | error / value | slicing s |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.points:
        for d in args.objectives:
            rng = np.random.default_rng([n, d])
            points = np.clip(rng.uniform(0.5, 0.95, d) + rng.normal(0, 0.02, (n, d)), 0, 1)
            result, seconds = timed(hypervolume_with_error, points)
            method = "exact" if result.exact else "estimate"
            row = f"| {n} | {d} | {seconds:.3f} | {method} | {result.stderr / result.value:.1e} |"
            if d <= 5 or n <= args.exact_up_to:
                from optuna._hypervolume import compute_hypervolume

                exact, exact_seconds = timed(compute_hypervolume, -points, np.zeros(d))
                row += f" {exact_seconds:.3f} | {abs(result.value - exact) / exact:.1e} |"
            else:
                row += " not run | — |"
            if d <= args.slicing_up_to and n <= 16:
                _, old_seconds = timed(slicing, points, np.zeros(d))
                row += f" {old_seconds:.3f} |"
            else:
                row += " not run |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
