"""What checking a study before it writes anything costs: every run of a preset's sweep or
comparison through :func:`scalarize.launch.check_study` (objectives, weights, the model on the
``meta`` device, the method, the probes), next to the time to build the first run's trainer for
real, in the same process.

Usage: python benchmarks/validation_cost.py [--repeats 3]

Prints, per preset: runs planned, distinct configs checked, median seconds of the whole check,
milliseconds per planned run, and the seconds to build one real Trainer (model, optimiser, data
on the device) for scale. Data are loaded once, outside the timings (the commands load them
anyway to plan the study).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from scalarize.launch import check_study
from scalarize.studies.compare import load_compare_config, plan_compare
from scalarize.studies.sweep import load_sweep_config, plan_sweep
from scalarize.training import Trainer, load_data

ROOT = Path(__file__).resolve().parent.parent
PRESETS = {
    "shapes_capacity (sweep)": ("sweep", ROOT / "configs" / "shapes_capacity.yaml"),
    "compare_shapes (19 methods)": ("compare", ROOT / "configs" / "compare_shapes.yaml"),
}


def measure(kind: str, path: Path, repeats: int) -> dict[str, float]:
    overrides = ["train.device=cpu"]
    if kind == "sweep":
        config = load_sweep_config(path, overrides)
        data = load_data(config.base())
        configs = [c for _, c in plan_sweep(config, data.objectives)]
    else:
        config = load_compare_config(path, overrides)
        data = load_data(config.base())
        configs = [c for _, c in plan_compare(config, data.objectives)]
    check_study(configs, data)  # warm: first imports of methods and models
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        check_study(configs, data)
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    Trainer(configs[0], data=data, progress=False)
    trainer_seconds = time.perf_counter() - start
    distinct = len({c.model_dump_json(exclude={"seed", "name"}) for c in configs})
    check = statistics.median(seconds)
    return {"runs": len(configs), "distinct": distinct, "check_s": check,
            "ms_per_run": 1000 * check / len(configs), "trainer_s": trainer_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'preset':30} {'runs':>5} {'checked':>8} {'check s':>8} {'ms/run':>7} "
          f"{'1 trainer s':>11}")
    for name, (kind, path) in PRESETS.items():
        r = measure(kind, path, args.repeats)
        print(f"{name:30} {r['runs']:5.0f} {r['distinct']:8.0f} {r['check_s']:8.2f} "
              f"{r['ms_per_run']:7.1f} {r['trainer_s']:11.2f}")


if __name__ == "__main__":
    main()
