"""Data-parallel steps: what the trainer does differently on several processes.

Each process takes its slice of every global batch the one-process sampler draws
(:func:`shard_batches`), so the batch order stays the seeded, resumable one and, for
multi-domain data, the global batch keeps the weights' domain proportions. After the forward
pass, :func:`global_losses` turns the slice's mean losses into losses whose values are the
global batch's and whose gradients are this process's share of the global gradient (partial
labels: each objective's share is weighted by its examples here over its examples in the global
batch); after the method's backward pass :func:`sum_gradients` sums the model's gradients over
the processes. The update then equals one process's on the global batch, within the rounding of
the sums' order (:mod:`scalarize.methods.shard` says what a method does for it).

Example (slicing needs no communication):
    >>> from scalarize.methods.shard import Shard
    >>> batches = shard_batches([torch.arange(5)], Shard(1, 2))
    >>> [(b.tolist(), s.span()) for b, s in batches]
    [([3, 4], (3, 5))]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method
from scalarize.methods.shard import Shard

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def check_distributes(config: RunConfig, method: Method, world: int) -> None:
    """Refuse, in one line, a run that ``world`` processes cannot train as one would: a method
    that does not distribute, or what :func:`check_layout` refuses."""
    if method.distributes is not True:
        reason = method.distributes or "it does not say it distributes"
        raise ScalarizeError(f"method {config.method.name!r} cannot train on {world} processes "
                             f"({reason}); train it on one process (without --nproc)")
    check_layout(config, world)


def batchnorm_across(model: ModuleT, device: torch.device, shard: Shard) -> ModuleT:
    """``model`` with its BatchNorm layers normalising over the global batch where torch can
    (``SyncBatchNorm``, CUDA only; the same parameters, so the optimiser and the method see no
    change), else as it is, with one warning: on the CPU each process normalises its own share
    of the batch, as plain DDP does, so a BatchNorm model on several processes is not the
    one-process run (models without BatchNorm are, to float tolerance)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if device.type == "cuda":
        return cast(ModuleT, nn.SyncBatchNorm.convert_sync_batchnorm(model))
    warnings.warn(f"BatchNorm normalises each process's share of the batch on the CPU (torch's "
                  f"SyncBatchNorm needs CUDA), so this {shard.world}-process run is not the "
                  "one-process run of the same global batch; models without BatchNorm are",
                  stacklevel=3)
    return model


def check_layout(config: RunConfig, world: int) -> None:
    """Refuse, in one line and before any process starts, a batch that does not divide among
    ``world`` processes.

    Example:
        >>> check_layout(RunConfig(), 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        scalarize.errors.ScalarizeError: train.batch_size=256 does not divide among 3 ...
    """
    size = config.train.batch_size
    if size % world:
        raise ScalarizeError(f"train.batch_size={size} does not divide among {world} "
                             f"processes; set it to a multiple of {world}")


def shard_batches(indices: Iterable[torch.Tensor], shard: Shard
                  ) -> Iterator[tuple[torch.Tensor, Shard]]:
    """This process's slice of each global batch ``indices`` yields, with the step's shard."""
    for index in indices:
        step = Shard(shard.rank, shard.world, len(index))
        start, stop = step.span()
        yield index[start:stop], step


def global_losses(losses: torch.Tensor, counts: torch.Tensor, shard: Shard
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch's mean losses (values) with this process's share of their gradient,
    and the global counts: one all-reduce of 2T numbers."""
    local = torch.stack([losses.detach() * counts, counts.to(losses.dtype)])
    total, global_counts = shard.all_reduce(local)
    denominator = global_counts.clamp(min=1)
    value = total / denominator
    share = losses * (counts.to(losses.dtype) / denominator)
    return share + (value - share).detach(), global_counts.to(counts.dtype)


def sum_gradients(params: Iterable[nn.Parameter], shard: Shard) -> None:
    """Every parameter's ``.grad`` summed over the processes in one all-reduce; a parameter
    without a gradient on every process keeps none (the optimiser then leaves it, as it would on
    one process)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel())
             for p in params]
    has = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype,
                       device=grads[0].device)
    flat = shard.all_reduce(torch.cat([*grads, has]))
    offset = 0
    present = flat[-len(params):] > 0
    for param, keep in zip(params, present.tolist(), strict=True):
        size = param.numel()
        param.grad = flat[offset:offset + size].view_as(param).clone() if keep else None
        offset += size


def global_recompute(recompute: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                     shard: Shard) -> Callable[[], torch.Tensor]:
    """A method's ``recompute_losses`` (FAMO's) on the global batch: the slice's mean losses
    and counts, combined over the processes."""
    def losses() -> torch.Tensor:
        mean, counts = recompute()
        return global_losses(mean, counts, shard)[0].detach()

    return losses


def gather(value: Any, shard: Shard) -> list[Any]:
    """``value`` of every process, in rank order (a checkpoint's RNG states)."""
    if shard.world == 1:
        return [value]
    out: list[Any] = [None] * shard.world
    dist.all_gather_object(out, value)
    return out


def broadcast(value: Any, shard: Shard | None) -> Any:
    """Rank 0's ``value`` on every process (the checkpoint a resumed run loads); ``value``
    itself on one process (``shard`` ``None``)."""
    if shard is None or shard.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


__all__ = ["broadcast", "check_distributes", "check_layout", "gather", "global_losses",
           "global_recompute", "shard_batches", "sum_gradients"]
