"""The example from Python: the same data and model as the configs, through ``scalarize.api``,
with one task given as your own loss and metric. Run from this folder:

    python walkthrough.py            # 16 s on a 2-core CPU (measured)
"""

from __future__ import annotations

import sys

import torch.nn.functional as F
from toydata import TASKS, arrays
from toymodel import build

import scalarize.api as sz


def size_loss(output, target):
    """Your own per-example loss: smooth L1 on the predicted side length."""
    return F.smooth_l1_loss(output[:, 0], target, reduction="none", beta=0.05)


def main(out: str = "walkthrough", epochs: int = 4, n_train: int = 512) -> None:
    tasks = [*TASKS[:2], sz.task("size", loss=size_loss, higher_is_better=False,
                                 metric=lambda output, target: (output[:, 0] - target).abs())]
    data = sz.from_arrays(tasks, train=arrays(n_train, 16, 0), test=arrays(256, 16, 1),
                          name="squares")
    model = sz.model(build, width=16, depth=2)
    recipe = {"train": {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "warmup_epochs": 0.5},
              "probes": {"conflicts": {"every": 4}}}

    run = sz.train(data, model, config=recipe, out=f"{out}/runs")
    print(f"uniform weights: test scores {run.test.acc}")
    sweep = sz.sweep(data, model, {"capacities": {"options": {"width": [8, 16]}}},
                     config=recipe, out=f"{out}/sweep")
    print(f"sweep: {len(sweep)} runs; conflict share per width:")
    print(sz.conflicts(f"{out}/sweep")["per_capacity"].to_string(index=False))
    found = sz.search(data, model, {"strategy": "pbt", "population": 4, "interval": 2},
                      config=recipe, out=f"{out}/pbt")
    replayed = sz.replay(f"{out}/pbt")
    print(f"PBT best member {found.best_member}; replayed: test avg {replayed.test.avg_acc:.3f}")
    table = sz.compare(data, model, ["static", "pcgrad", "uw"], config=recipe,
                       out=f"{out}/compare")
    print(table.to_string(index=False))
    print("report:", sz.report(f"{out}/sweep")[0])


if __name__ == "__main__":
    main(*sys.argv[1:2])
