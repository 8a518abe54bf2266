"""Trainer step vs a bare PyTorch loop: same model, batches, optimiser and schedule.

Usage: python benchmarks/step_overhead.py [--spec vit-d3-w48-p4] [--batch 128] [--steps 200]

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

from scalarize.config import load_config
from scalarize.training import Trainer
from scalarize.training.schedule import warmup_cosine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="vit-d3-w48-p4")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    cfg = load_config(None, [
        f"model.spec={args.spec}", f"train.batch_size={args.batch}", "train.device=cpu",
        f"benchmark.options={{n_train: {args.batch * 20}, n_val: 16, n_test: 16}}",
    ])
    trainer = Trainer(cfg, progress=False)
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
        x = torch.addcmul(split.shift, split.x[index].float(), split.scale)
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
    print(f"model {args.spec}, batch {args.batch}, {len(t_bare)} alternating steps, "
          f"{torch.get_num_threads()} threads")
    print(f"trainer step: {statistics.median(t_trainer) * 1e3:.1f} ms (median)   "
          f"bare step: {statistics.median(t_bare) * 1e3:.1f} ms (median)")
    print(f"ratio trainer/bare: {sum(t_trainer) / sum(t_bare):.3f}  "
          f"(per-block interquartile range {q1:.3f}-{q3:.3f})")


if __name__ == "__main__":
    main()
