"""One run on several processes (data parallel): spawned here (``--nproc N``) or under
``torchrun``; each process trains its slice of every global batch
(:mod:`scalarize.training.parallel`).

Rank 0 holds the run folder (lock, config, metrics, checkpoints, summary) and the trackers; the
other ranks only train, and take rank 0's decisions (resume or not, a refusal) and checkpoint
through the process group. A refusal in any process stops the group and is raised here in one
line. On CUDA each process uses the GPU of its local rank and NCCL; on the CPU, gloo.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.launch.process import train_process
from scalarize.methods.shard import Shard
from scalarize.runs.records import RunSummary
from scalarize.training.callbacks import Callback
from scalarize.training.parallel import check_layout

#: how long a process waits for the others at a collective before the group fails
TIMEOUT = timedelta(minutes=30)


class StopAfter(Callback):
    """Stop every process right after step ``step`` (the same step everywhere, so no process
    is left waiting at a collective), or kill process ``kill`` alone there (it exits at once;
    the others wait at the next collective until the launcher ends them): an interruption at a
    known place, for tests and benchmarks."""

    def __init__(self, step: int, kill: int | None = None) -> None:
        self.step, self.kill = step, kill

    def on_step_end(self, trainer: Any, step: int, loss: Any) -> None:
        if step != self.step:
            return
        if self.kill is None:
            raise Stopped(f"stopped after step {step}")
        if trainer.shard is not None and trainer.shard.rank == self.kill:
            os._exit(1)


class Stopped(Exception):
    """Raised by :class:`StopAfter`."""


def torchrun_shard() -> Shard | None:
    """This process's shard when it runs under ``torchrun`` with more than one process
    (``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR`` set), else ``None``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        return None
    return Shard(int(os.environ["RANK"]), world)


def _backend(config: RunConfig) -> str:
    cuda = config.train.device != "cpu" and torch.cuda.is_available()
    return "nccl" if cuda else "gloo"


def join_group(config: RunConfig, shard: Shard, init_method: str) -> bool:
    """Join the process group (once per process), on this process's GPU where there are;
    whether this call created it (see :func:`process_group`)."""
    backend = _backend(config)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", shard.rank)))
    if dist.is_initialized():
        return False
    dist.init_process_group(backend, init_method=init_method, rank=shard.rank,
                            world_size=shard.world, timeout=TIMEOUT)
    return True


@contextmanager
def process_group(config: RunConfig, shard: Shard, init_method: str) -> Iterator[None]:
    """The process group joined for the block (:func:`join_group`) and destroyed after it when
    the block's join created it (one the caller set up is left as it is). A process that ends
    with its gloo group alive can abort in the group's destructor at interpreter exit
    ("terminate called without an active exception", SIGABRT), after all its work is done."""
    created = join_group(config, shard, init_method)
    try:
        yield
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def finished_process() -> None:
    """End a spawned process whose work is done and handed back, skipping the interpreter's
    exit: there gloo's objects, even after the group is destroyed, could abort the process in
    their destructors (SIGABRT, "terminate called without an active exception", once in a
    fresh-clone ``make test`` after every case was written), and ``mp.spawn`` takes that for a
    failure of the run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port() -> int:
    """A TCP port free on loopback now (for a process group's or a Ray node's address)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world: int, address: str, config: RunConfig, out: str, resume: bool,
            overwrite: bool, progress: bool | None, stop_after: int | None,
            kill: int | None, results: Any) -> None:
    """One spawned process: join the group, train, report rank 0's summary or a refusal."""
    if not config.train.threads:  # the machine's cores shared among the processes
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    shard = Shard(rank, world)
    callbacks = [StopAfter(stop_after, kill)] if stop_after is not None else []
    try:
        with process_group(config, shard, address):
            summary = train_process(config, out, shard, resume=resume, overwrite=overwrite,
                                    callbacks=callbacks, progress=progress)
        if rank == 0:
            results.put(("done", summary))
        finished_process()
    except Stopped as exc:
        if rank == 0:
            results.put(("stopped", str(exc)))
    except ScalarizeError as exc:
        results.put(("refused", str(exc)))
        raise


def spawn_run(config: RunConfig, out: Path | str, nproc: int, *, resume: bool = False,
              overwrite: bool = False, progress: bool | None = None,
              stop_after: int | None = None, kill: int | None = None) -> RunSummary | None:
    """Train ``config`` on ``nproc`` processes spawned on this machine (rendezvous on the
    loopback) and return its summary; ``None`` when ``stop_after`` (a step) stopped it. With
    ``kill`` too, that process alone exits there and the run fails (:class:`StopAfter`)."""
    if nproc < 1:
        raise ScalarizeError(f"--nproc {nproc}: give 1 or more processes")
    check_layout(config, nproc)
    if _backend(config) == "nccl" and nproc > torch.cuda.device_count():
        raise ScalarizeError(f"--nproc {nproc} asks for more processes than the "
                             f"{torch.cuda.device_count()} GPUs here; give at most that many "
                             "or train.device=cpu")
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    address = f"tcp://127.0.0.1:{free_port()}"
    try:
        mp.spawn(_worker, args=(nproc, address, config, str(out), resume, overwrite, progress,
                                stop_after, kill, results), nprocs=nproc, join=True)
    except ProcessException as exc:  # one raised or exited: the others were ended
        while not results.empty():
            kind, value = results.get()
            if kind == "refused":
                raise ScalarizeError(value) from None
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise ScalarizeError(f"a training process failed: {lines[-1] if lines else exc}"
                             ) from None
    kind, value = results.get()
    return value if kind == "done" else None


__all__ = ["StopAfter", "Stopped", "finished_process", "free_port", "join_group",
           "process_group", "spawn_run", "torchrun_shard"]
