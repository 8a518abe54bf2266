"""The per-task contract: an encoder that gives each task its own features.

Hard sharing (ViT, ResNet, DeepLab) maps a batch to one feature tensor that every head reads.
Architectures with task-specific paths inside the network (MTAN, Cross-stitch, MMoE, PLE, a
user's two-tower model) cannot: their forward returns a mapping ``task -> features`` instead,
one B×``out_features`` tensor per head (and, to feed dense heads, a ``feature_map`` returning
``task -> B×out_features×h×w``).

An encoder says it is per-task by a ``tasks`` attribute: the head names it makes features for,
which its factory receives as the keyword ``tasks=(...)`` when it takes one. It may also say
which of its parameters are **shared** with a ``shared_parameters()`` method: those the
gradient-based methods aggregate over and the conflict probe measures; the others are
task-specific, and each gets the gradient of the loss that reaches it, as the heads do. Without
the method they are found from the encoder's graph (:func:`reached_by_several`): a parameter
that more than one task's features depend on is shared, one that a single task's features
depend on is that task's.

Example:
    >>> import torch
    >>> features = {"a": torch.ones(2, 3), "b": torch.zeros(2, 3)}
    >>> features_for(features, "b").sum().item()
    0.0
    >>> len(feature_tensors(features)), len(feature_tensors(torch.ones(2, 3)))
    (2, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

#: What an encoder's forward returns: one shared tensor, or one tensor per task
Features = torch.Tensor | Mapping[str, torch.Tensor]


def is_per_task(encoder: nn.Module) -> bool:
    """Whether ``encoder`` gives features per task (it names its ``tasks``)."""
    return getattr(encoder, "tasks", None) is not None


def task_names(encoder: nn.Module) -> tuple[str, ...]:
    """The tasks a per-task encoder makes features for (empty for hard sharing)."""
    return tuple(getattr(encoder, "tasks", None) or ())


def features_for(features: Features, head: str) -> torch.Tensor:
    """The features head ``head`` reads: its own entry of per-task features, or the shared
    tensor."""
    return features if isinstance(features, torch.Tensor) else features[head]


def feature_tensors(features: Features) -> list[torch.Tensor]:
    """Every feature tensor of a step, in the tasks' order (one for hard sharing)."""
    return [features] if isinstance(features, torch.Tensor) else list(features.values())


def shared_parameters(encoder: nn.Module, example: torch.Tensor | None = None
                      ) -> list[nn.Parameter]:
    """The encoder's shared parameters: what its ``shared_parameters()`` names; else, for a
    per-task encoder given an ``example`` batch, those more than one task reaches; else all
    (hard sharing). With one task (one head that every objective reads, as MDL's shared
    head) every parameter is shared, whatever the encoder names."""
    if is_per_task(encoder) and len(task_names(encoder)) < 2:
        return [p for p in encoder.parameters() if p.requires_grad]
    own = getattr(encoder, "shared_parameters", None)
    if callable(own):
        return list(own())
    if is_per_task(encoder) and example is not None:
        return reached_by_several(encoder, task_names(encoder), example)
    return list(encoder.parameters())


def reached_by_several(encoder: nn.Module, tasks: Sequence[str], example: torch.Tensor
                       ) -> list[nn.Parameter]:
    """The parameters of a per-task ``encoder`` that the features of more than one of its
    ``tasks`` depend on (or of none), found from the graph of one forward on ``example`` (in
    eval mode: no statistics move, no random numbers are drawn); the others are each reached
    by one task only. With one task (one head that every objective reads, as MDL's shared
    head) every parameter is shared."""
    params = [p for p in encoder.parameters() if p.requires_grad]
    if len(tasks) < 2:
        return params
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.enable_grad():
            features = encoder(example)
            reached = torch.zeros(len(params), dtype=torch.int64)
            for task in tasks:
                grads = torch.autograd.grad(features[task].sum(), params, retain_graph=True,
                                            allow_unused=True)
                reached += torch.tensor([g is not None for g in grads], dtype=torch.int64)
    finally:
        encoder.train(was_training)
    return [p for p, n in zip(params, reached.tolist(), strict=True) if n != 1]


def parameters_except(module: nn.Module, skip: Sequence[nn.Module]) -> list[nn.Parameter]:
    """``module``'s parameters outside the submodules ``skip`` (what a built-in per-task encoder
    shares: everything but its task-specific parts)."""
    skipped = {id(p) for part in skip for p in part.parameters()}
    return [p for p in module.parameters() if id(p) not in skipped]


__all__ = ["Features", "feature_tensors", "features_for", "is_per_task", "parameters_except",
           "reached_by_several", "shared_parameters", "task_names"]
