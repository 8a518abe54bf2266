"""Search quality at equal compute (member-epochs) on shapes: PBT vs uniform vs grid vs random,
for two tasks and for five, and multi-objective PBT's hypervolume vs PBT's.

Usage: python benchmarks/search_quality.py [--seeds 0 1 2] [--out findings/search]

Each (setting, strategy, seed) is one resumable search folder under --out; every strategy ranks
its members on the same held-out 30% of the training split and is scored by the test accuracy
of the member it selects. Prints one table per setting (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scalarize.analysis.search import by_strategy, searches_table
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search

SETTINGS = {
    "2tasks": ("configs/findings/search_2tasks.yaml", {
        "uniform": ["search.strategy=grid", "search.points=[uniform]"],
        "grid": ["search.strategy=grid"],                 # step 0.05: 21 members
        "random": ["search.strategy=random"],             # as many members as PBT
        "pbt": ["search.strategy=pbt"],
        "pb2": ["search.strategy=pb2"],
    }),
    "5tasks": ("configs/findings/search_5tasks.yaml", {
        "uniform": ["search.strategy=grid", "search.points=[uniform]"],
        "random": ["search.strategy=random"],
        "pbt": ["search.strategy=pbt"],
        "mopbt": ["search.strategy=mopbt"],
    }),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="findings/search")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    for setting in args.settings:
        path, strategies = SETTINGS[setting]
        folder = Path(args.out) / setting
        for seed in args.seeds:
            for name, overrides in strategies.items():
                config = load_search_config(path, [*overrides, f"seed={seed}"])
                run_search(config, folder / f"{name}-s{seed}", progress=False)
        table = searches_table(folder)
        grouped = by_strategy(table)
        print(f"\n== {setting} ({path}) ==")
        with pd.option_context("display.width", 200):
            print(grouped.to_string(float_format=lambda v: f"{v:.4f}"))
        print("\nper seed:")
        table["strategy"] = table.search.str.replace(r"-s\d+$", "", regex=True)
        print(table.pivot(index="strategy", columns="seed", values="test_avg_acc")
              .to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
