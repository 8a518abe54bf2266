"""Per-step time and communication of a data-parallel run: 1 process against 2 (gloo, CPU).

Usage: python benchmarks/ddp_step.py [--methods static uw upgrad modo] [--spec vit-d2-w32-p8]
                                     [--batch 64] [--steps 8] [--threads 1] [--tasks 2 5]

The shapes benchmark's first T of its five tasks for each T of --tasks, one global batch of
--batch images: one process trains on it, then two processes (spawned here, gloo on the
loopback) each train on half of it (``scalarize train --nproc 2``'s path). After one warm-up
epoch, the time of an epoch of --steps steps is divided by its steps (rank 0's, wall clock);
the bytes each process hands to the all-reduces per step are counted by wrapping
``torch.distributed.all_reduce``. Printed: the step time of 1 and 2 processes, their ratio
(below 1: faster on two), the bytes per step and the model's gradient size (static and the
loss-based methods send the gradient and 2T numbers; the Jacobian methods T times the shared
gradient; the two-batch methods 2T times).

What it does not measure: GPU scaling (NCCL, one GPU a process); on a CPU the two processes
share the machine's cores (--threads each), so the ratio says what the communication and the
sharding cost, not what more devices give.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from scalarize.config import load_config
from scalarize.launch.distributed import _free_port, join_group
from scalarize.methods.shard import Shard
from scalarize.training import Trainer

TASKS = ["shape", "colour", "size", "count", "balance"]  # the shapes benchmark's


def _config(method: str, spec: str, batch: int, steps: int, threads: int, tasks: int = 5):
    return load_config(None, [f"benchmark.tasks=[{', '.join(TASKS[:tasks])}]",
        f"model.spec={spec}", f"method.name={method}", "train.device=cpu", "train.epochs=2",
        f"train.batch_size={batch}", "train.warmup_epochs=0", f"train.threads={threads}",
        f"benchmark.options={{n_train: {batch * steps}, n_val: 8, n_test: 8, image_size: 32, "
        "cache: false}"])


def measure(method: str, spec: str, batch: int, steps: int, threads: int, tasks: int,
            shard: Shard | None) -> dict[str, float]:
    """One process's step time (after a warm-up epoch) and bytes all-reduced per step."""
    sent = [0]
    reduce = dist.all_reduce

    def counted(tensor: torch.Tensor, *args: object, **kwargs: object) -> object:
        sent[0] += tensor.numel() * tensor.element_size()
        return reduce(tensor, *args, **kwargs)

    dist.all_reduce = counted  # type: ignore[assignment]
    trainer = Trainer(_config(method, spec, batch, steps, threads, tasks), progress=False,
                      shard=shard)
    trainer.train_epoch()  # warm-up
    trainer.epoch = 1
    sent[0] = 0
    if shard is not None:
        dist.barrier()
    start = time.perf_counter()
    trainer.train_epoch()
    seconds = time.perf_counter() - start
    grad = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    return {"step_ms": 1e3 * seconds / trainer.steps_per_epoch,
            "bytes": sent[0] / trainer.steps_per_epoch, "grad_bytes": grad}


def _worker(rank: int, world: int, address: str, args: argparse.Namespace, out: str) -> None:
    shard = Shard(rank, world)
    join_group(_config("static", args.spec, args.batch, args.steps, args.threads), shard,
               address)
    results = {f"{m} {t}": measure(m, args.spec, args.batch, args.steps, args.threads, t, shard)
               for t in args.tasks for m in args.methods}
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["static", "uw", "upgrad", "modo"])
    parser.add_argument("--spec", default="vit-d2-w32-p8")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", type=int, nargs="+", default=[5], choices=range(1, 6))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    one = {f"{m} {t}": measure(m, args.spec, args.batch, args.steps, args.threads, t, None)
           for t in args.tasks for m in args.methods}
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "two.json")
        mp.spawn(_worker, args=(2, f"tcp://127.0.0.1:{_free_port()}", args, out), nprocs=2)
        two = json.loads(Path(out).read_text())
    print(f"{args.spec}, global batch {args.batch}, {args.steps} steps, {args.threads} "
          f"thread(s) a process, CPU, gloo; load average {os.getloadavg()[0]:.1f}")
    print(f"{'method T':<10} {'1 proc ms':>10} {'2 proc ms':>10} {'ratio':>6} "
          f"{'sent/step':>11} {'grad':>9} {'sent/grad':>9}")
    for m in one:
        a, b = one[m], two[m]
        print(f"{m:<10} {a['step_ms']:>10.1f} {b['step_ms']:>10.1f} "
              f"{b['step_ms'] / a['step_ms']:>6.2f} {b['bytes'] / 1e3:>9.1f}kB "
              f"{b['grad_bytes'] / 1e3:>7.1f}kB {b['bytes'] / b['grad_bytes']:>9.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
