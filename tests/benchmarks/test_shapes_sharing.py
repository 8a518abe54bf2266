"""The ``shapes`` regime where sharing helps (``configs/shapes_sharing.yaml`` at its largest
capacity, one seed): a small ``photo`` domain (60 images) drawn together with a large ``flat``
one (600), both asking the shape, beats the single-domain models of the same capacity.

Three runs of resnet8-x1.0: 4 min 52 s of CPU (12 min wall on the 2-core VM under a load of
10; about 2.5 min expected on a quiet one), far above the few seconds a test should take, but the
regime needs this much (at 400 + 40 images and 12 epochs the same comparison gives Δ = −17%;
at width 0.25, −5.6%).
Runs are deterministic on CPU, so the margin is a regression check, not a statistical claim:
measured Δ = +4.9% (flat 0.967 → 0.950, photo 0.260 → 0.290)."""

from __future__ import annotations

import json

from scalarize.analysis.gain import multitask_gain
from scalarize.config import load_config
from scalarize.training import train_run

OPTIONS = {"n_train": [600, 60], "n_val": 200, "n_test": 600, "domains": ["flat", "photo"],
           "label": "shape"}
RECIPE = ["benchmark.name=shapes", "benchmark.view=mdl",
          f"benchmark.options={json.dumps(OPTIONS)}", "model.spec=resnet8-x1.0",
          "train.epochs=15", "train.batch_size=32", "train.lr=3e-3", "train.warmup_epochs=1",
          "train.device=cpu", "seed=0"]
MARGIN = 2.0  # Δ in percent (measured +4.9 on this seed)


def _test_acc(tmp_path, weights: str) -> dict[str, float]:
    summary = train_run(load_config(None, [*RECIPE, f"scalarization.weights={weights}"]),
                        tmp_path, progress=False)
    return dict(summary.test.acc)


def test_a_small_domain_borrows_from_a_large_one(tmp_path):
    single = {d: _test_acc(tmp_path, f"onehot:{d}")[d] for d in ("flat", "photo")}
    multi = _test_acc(tmp_path, "[0.75, 0.25]")
    assert multi["photo"] > single["photo"]  # the small domain gains ...
    assert multitask_gain(multi, single) > MARGIN  # ... more than the large one loses
