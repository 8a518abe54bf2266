"""The per-batch data check (:class:`~scalarize.training.batch_check.BatchCheck`) against one
training step, side by side in one process.

Usage: python benchmarks/batch_check_cost.py [--spec vit-d3-w48-p4] [--batch 128] [--steps 100]

The check runs on what a streamed split's loader hands over (on the host, before the copy to
the device), in its most expensive form: float images (uint8 images are finite by their type
and skip the image test) and every task's labels of the ``shapes`` benchmark. Steps and checks
alternate (step, check, step, check, ...) on the same batches, so drifts in machine speed hit
both alike; the ratio is total check time over total step time (the target: at most 2%).
"""

from __future__ import annotations

import argparse
import time

import torch

from scalarize.config import load_config
from scalarize.training import Trainer
from scalarize.training.batch_check import BatchCheck


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="vit-d3-w48-p4")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    cfg = load_config(None, [
        f"model.spec={args.spec}", f"train.batch_size={args.batch}", "train.device=cpu",
        f"benchmark.options={{n_train: {args.batch * 20}, n_val: 16, n_test: 16}}",
    ])
    trainer = Trainer(cfg, progress=False)
    trainer.model.train()
    split = trainer.splits["train"]
    check = BatchCheck("train", [(label, kind) for _, label, kind in trainer.objectives.tasks()])
    batches = [b for e in range(args.steps // len(trainer.sampler) + 2)
               for b in trainer.sampler.iter_epoch(e)][:args.steps + 5]
    hosted = [(split.x[i].float() / 255, {k: v[i] for k, v in split.labels.items()}, i)
              for i in batches]  # what a loader of float images hands over
    for index, (x, labels, i) in zip(batches[:5], hosted[:5], strict=True):  # warm-up
        trainer.train_step(index)
        check(x, labels, i, 1)
    step_s = check_s = 0.0
    for number, (index, (x, labels, i)) in enumerate(zip(batches[5:], hosted[5:],
                                                         strict=True), start=1):
        start = time.perf_counter()
        trainer.train_step(index)
        step_s += time.perf_counter() - start
        start = time.perf_counter()
        check(x, labels, i, number)
        check_s += time.perf_counter() - start
    n = len(batches) - 5
    print(f"spec {args.spec}, batch {args.batch}, {n} steps, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"step {1000 * step_s / n:.2f} ms, check {1000 * check_s / n:.3f} ms, "
          f"check/step {100 * check_s / step_s:.2f}%")


if __name__ == "__main__":
    main()
