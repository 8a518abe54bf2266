"""Trainer step vs a bare PyTorch loop: same model, batches, optimiser and schedule.

Usage: python benchmarks/step_overhead.py [--spec vit-d3-w48-p4] [--batch 128] [--rounds 5]

Both loops run the same number of steps on the same batches, alternating round by round in one
process; the printed ratio is the median over rounds of trainer time / bare time.
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


def bare_epoch(model, optimizer, scheduler, split, batches, weights, tasks) -> None:
    """What a user would write by hand: index, normalise, forward, weighted CE, step."""
    model.train()
    for index in batches:
        x = torch.addcmul(split.shift, split.x[index].float(), split.scale)
        features = model(x)
        loss = sum(w * F.cross_entropy(model.heads[t](features), split.labels[t][index])
                   for w, t in zip(weights, tasks, strict=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="vit-d3-w48-p4")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(None, [
        f"model.spec={args.spec}", f"train.batch_size={args.batch}", "train.device=cpu",
        f"benchmark.options={{n_train: {args.batch * args.steps}, n_val: 16, n_test: 16}}",
    ])
    trainer = Trainer(cfg, progress=False)
    model = copy.deepcopy(trainer.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr,
                                  weight_decay=cfg.train.weight_decay)
    total = 10 * args.steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, args.steps, total))
    split = trainer.splits["train"]
    batches = list(trainer.sampler.iter_epoch(0))
    tasks = list(trainer.objectives.names)
    weights = list(trainer.weights.values)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    timed(trainer.train_epoch)  # warm-up both
    timed(lambda: bare_epoch(model, optimizer, scheduler, split, batches, weights, tasks))
    ratios, t_trainer, t_bare = [], [], []
    for _ in range(args.rounds):
        a = timed(trainer.train_epoch)
        b = timed(lambda: bare_epoch(model, optimizer, scheduler, split, batches, weights, tasks))
        t_trainer.append(a / args.steps)
        t_bare.append(b / args.steps)
        ratios.append(a / b)
    print(f"model {args.spec}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads")
    print(f"trainer step: {statistics.median(t_trainer) * 1e3:.1f} ms   "
          f"bare step: {statistics.median(t_bare) * 1e3:.1f} ms")
    print(f"ratio trainer/bare (median of rounds): {statistics.median(ratios):.3f}  "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
