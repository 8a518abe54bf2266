"""Per-step time, communication and memory of a data-parallel run: 1 process against 2.

Usage: python benchmarks/ddp_step.py [--methods static uw upgrad modo] [--spec vit-d2-w32-p8]
                                     [--batch 64] [--steps 8] [--threads 1] [--tasks 2 5]
                                     [--device cpu]

The shapes benchmark's first T of its five tasks for each T of --tasks, one global batch of
--batch images: one process trains on it, then two processes (spawned here, gloo on the
loopback; NCCL with --device cuda) each train on half of it (``scalarize train --nproc 2``'s
path). Every measurement runs in processes of its own, so that their memory peaks are theirs.
After one warm-up epoch, the time of an epoch of --steps steps is divided by its steps (rank
0's, wall clock); the bytes each process hands to the all-reduces per step are counted by
wrapping ``torch.distributed.all_reduce``. Memory: on the CPU, the peak resident set of the
process over both epochs above its resident set once the trainer is built (Linux's ``VmHWM``,
reset through ``/proc/self/clear_refs``; the optimiser's state, the activations and the
per-objective gradients of a step, as the allocator keeps them), the largest over the
processes; on CUDA ``torch.cuda.max_memory_allocated`` above the allocation then. Printed: the
step time of 1 and 2 processes, their ratio (below 1: faster on two), the bytes per step and
the model's gradient size (static and the loss-based methods send the gradient and 2T numbers;
the Jacobian methods T times the shared gradient; the two-batch methods 2T times), and the
memory per process of 1 and 2 processes.

What it does not measure: GPU scaling (NCCL, one GPU a process); on a CPU the two processes
share the machine's cores (--threads each), so the ratio says what the communication and the
sharding cost, not what more devices give. The resident set counts what the allocator holds,
not what tensors use: a few MB either way are noise.
"""

from __future__ import annotations

import argparse
import contextlib
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
from scalarize.launch.distributed import free_port, join_group
from scalarize.methods.shard import Shard
from scalarize.training import Trainer

TASKS = ["shape", "colour", "size", "count", "balance"]  # the shapes benchmark's


def _config(method: str, spec: str, batch: int, steps: int, threads: int, tasks: int = 5,
            device: str = "cpu"):
    return load_config(None, [f"benchmark.tasks=[{', '.join(TASKS[:tasks])}]",
        f"model.spec={spec}", f"method.name={method}", f"train.device={device}",
        "train.epochs=2",
        f"train.batch_size={batch}", "train.warmup_epochs=0", f"train.threads={threads}",
        f"benchmark.options={{n_train: {batch * steps}, n_val: 8, n_test: 8, image_size: 32, "
        "cache: false}"])


def _status(key: str) -> float:
    """``/proc/self/status``'s ``key`` (kB) in bytes; NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return 1024.0 * int(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _memory_start(device: torch.device) -> float:
    """What the process holds now; the peak is reset, so that :func:`_memory_peak` is the
    peak from here on."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return float(torch.cuda.memory_allocated(device))
    with contextlib.suppress(OSError):  # VmHWM := VmRSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _memory_peak(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device))
    return _status("VmHWM")


def measure(method: str, spec: str, batch: int, steps: int, threads: int, tasks: int,
            shard: Shard | None, device: str = "cpu") -> dict[str, float]:
    """One process's step time (after a warm-up epoch), bytes all-reduced per step and peak
    memory above the built trainer's."""
    sent = [0]
    reduce = dist.all_reduce

    def counted(tensor: torch.Tensor, *args: object, **kwargs: object) -> object:
        sent[0] += tensor.numel() * tensor.element_size()
        return reduce(tensor, *args, **kwargs)

    dist.all_reduce = counted  # type: ignore[assignment]
    trainer = Trainer(_config(method, spec, batch, steps, threads, tasks, device),
                      progress=False, shard=shard)
    start_memory = _memory_start(trainer.device)
    trainer.train_epoch()  # warm-up
    trainer.epoch = 1
    sent[0] = 0
    if shard is not None:
        dist.barrier()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    start = time.perf_counter()
    trainer.train_epoch()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - start
    grad = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    return {"step_ms": 1e3 * seconds / trainer.steps_per_epoch,
            "bytes": sent[0] / trainer.steps_per_epoch, "grad_bytes": grad,
            "memory": _memory_peak(trainer.device) - start_memory}


def _worker(rank: int, world: int, address: str, args: argparse.Namespace, method: str,
            tasks: int, out: str) -> None:
    """One process of one measurement (``world`` 1: no process group)."""
    torch.set_num_threads(args.threads)
    shard = Shard(rank, world)
    if world > 1:
        join_group(_config("static", args.spec, args.batch, args.steps, args.threads,
                           device=args.device), shard, address)
    result = measure(method, args.spec, args.batch, args.steps, args.threads, tasks,
                     shard if world > 1 else None, args.device)
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    if world > 1:
        dist.destroy_process_group()


def run(args: argparse.Namespace, method: str, tasks: int, world: int) -> dict[str, float]:
    """One measurement on ``world`` fresh processes: rank 0's numbers, the largest memory."""
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_worker, args=(world, f"tcp://127.0.0.1:{free_port()}", args, method, tasks,
                                folder), nprocs=world)
        ranks = [json.loads(Path(folder, f"{r}.json").read_text()) for r in range(world)]
    return {**ranks[0], "memory": max(r["memory"] for r in ranks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["static", "uw", "upgrad", "modo"])
    parser.add_argument("--spec", default="vit-d2-w32-p8")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", type=int, nargs="+", default=[5], choices=range(1, 6))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    keys = [(m, t) for t in args.tasks for m in args.methods]
    one = {f"{m} {t}": run(args, m, t, 1) for m, t in keys}
    two = {f"{m} {t}": run(args, m, t, 2) for m, t in keys}
    print(f"{args.spec}, global batch {args.batch}, {args.steps} steps, {args.threads} "
          f"thread(s) a process, {args.device}, {'nccl' if args.device == 'cuda' else 'gloo'}"
          f"; load average {os.getloadavg()[0]:.1f}")
    print(f"{'method T':<10} {'1 proc ms':>10} {'2 proc ms':>10} {'ratio':>6} "
          f"{'sent/step':>11} {'grad':>9} {'sent/grad':>9} {'1 proc MB':>10} {'2 proc MB':>10}")
    for m in one:
        a, b = one[m], two[m]
        print(f"{m:<10} {a['step_ms']:>10.1f} {b['step_ms']:>10.1f} "
              f"{b['step_ms'] / a['step_ms']:>6.2f} {b['bytes'] / 1e3:>9.1f}kB "
              f"{b['grad_bytes'] / 1e3:>7.1f}kB {b['bytes'] / b['grad_bytes']:>9.2f} "
              f"{a['memory'] / 1e6:>10.1f} {b['memory'] / 1e6:>10.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
