"""Trainer step vs a bare PyTorch loop: same model, batches, optimiser and schedule.

Usage: python benchmarks/step_overhead.py [--spec vit-d3-w48-p4] [--batch 128] [--steps 200]
       python benchmarks/step_overhead.py --data tabular [--spec mlp-d3-w256] [--batch 128]

``--data tabular`` measures the non-image path: scikit-learn's ``digits`` as 64 float features
(two tasks, digit and digit >= 5, standardised with training statistics) from
``from_arrays``, an MLP; it also times the start (the trainer built from its plan: input
statistics, served splits and their checks, the model, the first-batch check, the optimiser;
against the bare loop's own setup: the model (without the encoder contract's dummy-batch
forward, a check of the trainer's), the standardised tensors, the optimiser).

The two loops alternate step by step in one process (trainer, bare, trainer, bare, ...) on the
same batches, so drifts in machine speed hit both alike; the ratio is total trainer time over
total bare time, and the spread is the interquartile range of per-block ratios (blocks of 20).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from scalarize.benchmarks import Dataset
from scalarize.config import load_config
from scalarize.models import build_model
from scalarize.training import Trainer
from scalarize.training.schedule import warmup_cosine


def _digits() -> Dataset:
    """scikit-learn's digits: 64 float features, two tasks, standardised."""
    from sklearn.datasets import load_digits

    from scalarize.api import from_arrays, task

    x, y = load_digits(return_X_y=True)
    labels, n = {"digit": y, "high": (y >= 5).astype(int)}, 1500
    return from_arrays([task("digit", classes=10), task("high", classes=2)],
                       train=(x[:n], {k: v[:n] for k, v in labels.items()}),
                       test=(x[n:], {k: v[n:] for k, v in labels.items()}), standardize=True)


def _bare_start(data: Dataset, spec: str, lr: float, weight_decay: float) -> float:
    """Seconds a hand-written loop takes to start on ``data``: the model and its heads, the
    standardised training tensors, AdamW."""
    start = time.perf_counter()
    x = torch.from_numpy(data.splits["train"].x)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp(min=1e-12)
    _ = (x - mean) / std
    _ = {k: torch.from_numpy(v) for k, v in data.splits["train"].labels.items()}
    # without the encoder contract's dummy-batch forward: that check is the trainer's work
    model = build_model(spec, data.input, {t.name: t.num_classes for t in data.tasks},
                        check_forward=False)
    torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=["shapes", "tabular"], default="shapes")
    parser.add_argument("--spec", default=None,
                        help="vit-d3-w48-p4 (shapes) or mlp-d3-w256 (tabular) by default")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    tabular = args.data == "tabular"
    args.spec = args.spec or ("mlp-d3-w256" if tabular else "vit-d3-w48-p4")
    data = _digits() if tabular else None
    cfg = load_config(None, [
        f"model.spec={args.spec}", f"train.batch_size={args.batch}", "train.device=cpu",
        f"benchmark.options={{n_train: {args.batch * 20}, n_val: 16, n_test: 16}}",
    ])
    start = time.perf_counter()  # the first start in a process is cold (imports)
    trainer = Trainer(cfg, progress=False, data=data)
    cold = time.perf_counter() - start
    trainer.model.train()
    model = copy.deepcopy(trainer.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr,
                                  weight_decay=cfg.train.weight_decay)
    total = cfg.train.epochs * trainer.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, trainer.steps_per_epoch, total))
    split = trainer.splits["train"]
    tasks = list(trainer.objectives.names)
    weights = list(trainer.weights.values)

    def bare_step(index: torch.Tensor) -> None:
        """What a user would write by hand: index, normalise, forward, weighted CE, step."""
        x = split.x[index].float()
        shift, scale = split.normalise.shift, split.normalise.scale
        x = torch.addcmul(shift, x, scale) if shift is not None and scale is not None else x
        features = model(x)
        loss = sum(w * F.cross_entropy(model.heads[t](features), split.labels[t][index])
                   for w, t in zip(weights, tasks, strict=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

    batches = [b for e in range(args.steps // len(trainer.sampler) + 2)
               for b in trainer.sampler.iter_epoch(e)][:args.steps + 5]
    for index in batches[:5]:  # warm-up both
        trainer.train_step(index)
        bare_step(index)
    t_trainer, t_bare = [], []
    for index in batches[5:]:
        start = time.perf_counter()
        trainer.train_step(index)
        middle = time.perf_counter()
        bare_step(index)
        t_trainer.append(middle - start)
        t_bare.append(time.perf_counter() - middle)
    blocks = [sum(t_trainer[i:i + 20]) / sum(t_bare[i:i + 20])
              for i in range(0, len(t_bare) - 19, 20)]
    q1, _, q3 = statistics.quantiles(blocks, n=4)
    print(f"data {args.data}, model {args.spec}, batch {args.batch}, {len(t_bare)} alternating "
          f"steps, {torch.get_num_threads()} threads")
    if tabular:
        t_start, b_start = [], []
        for _ in range(10):  # warm, alternating: the machine's load hits both alike
            begin = time.perf_counter()
            Trainer(cfg, progress=False, data=data)
            t_start.append(time.perf_counter() - begin)
            b_start.append(_bare_start(data, args.spec, cfg.train.lr, cfg.train.weight_decay))
        started, bare = statistics.median(t_start), statistics.median(b_start)
        print(f"start: trainer {started * 1e3:.1f} ms   bare {bare * 1e3:.1f} ms (model, "
              f"tensors, optimiser; medians of 10 alternating warm starts; the process's first "
              f"trainer {cold * 1e3:.0f} ms cold): {(started - bare) * 1e3:+.1f} ms a run")
        epoch = len(trainer.sampler)
        run = ((started + epoch * statistics.median(t_trainer))
               / (bare + epoch * statistics.median(t_bare)))
        print(f"start and one epoch ({epoch} steps): trainer/bare {run:.3f}")
    print(f"trainer step: {statistics.median(t_trainer) * 1e3:.1f} ms (median)   "
          f"bare step: {statistics.median(t_bare) * 1e3:.1f} ms (median)")
    print(f"ratio trainer/bare: {sum(t_trainer) / sum(t_bare):.3f}  "
          f"(per-block interquartile range {q1:.3f}-{q3:.3f})")


if __name__ == "__main__":
    main()
