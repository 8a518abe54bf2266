"""Mixtures of experts with a gate per task: MMoE (Ma et al. 2018) and PLE / CGC (Tang et al.
2020, "Progressive Layered Extraction").

Specs (``e`` experts of ``d`` layers of width ``w``; ``d`` is 2 unless given):

- ``mmoe-e<experts>-w<width>[-d<depth>]``, e.g. ``mmoe-e4-w64``: ``e`` shared experts; task t's
  features are Σ_k g_t(x)_k E_k(x), with g_t a softmax gate of its own;
- ``ple-l<levels>-e<experts>-w<width>[-d<depth>]``, e.g. ``ple-l2-e2-w64``: at every level each
  task has ``e`` experts of its own and the tasks share ``e``; task t's gate mixes its own and
  the shared experts, and, below the last level, a shared gate mixes all of them into the next
  level's shared input (the paper's progressive layers);
- ``cgc-e<experts>-w<width>[-d<depth>]``: ``ple`` with one level (Customized Gate Control).

The experts are MLPs (Linear, ReLU) over the **flattened input**: an image is read as its
C·H·W values, as MMoE reads a feature vector, so the same families run unchanged on N×F
features; the gates read the same input as their experts. The features are B×``w``; these
models have no feature map, so they feed per-image heads only.

Shared parameters: the shared experts and gates, and whatever feeds a shared gate; each task's
gates, and its experts at the last level, are its own (found from the graph:
:func:`~scalarize.models.per_task.reached_by_several`).

Example:
    >>> import torch
    >>> net = build_experts("ple", "-l2-e2-w8", ("a", "b"), (1, 4, 4))
    >>> {t: tuple(f.shape) for t, f in net(torch.zeros(3, 1, 4, 4)).items()}
    {'a': (3, 8), 'b': (3, 8)}
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder

_MMOE = re.compile(r"^-e([0-9]+)-w([0-9]+)(?:-d([0-9]+))?$")
_PLE = re.compile(r"^-l([0-9]+)-e([0-9]+)-w([0-9]+)(?:-d([0-9]+))?$")
#: layers per expert unless the spec says (``-d``)
DEPTH = 2


def mlp(in_features: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` Linear + ReLU layers of ``width`` over a flattened input."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def mix(gate: nn.Module, x: torch.Tensor, experts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_k softmax(gate(x))_k · experts_k: B×width."""
    weights = torch.softmax(gate(x), dim=-1)  # B×K
    return torch.einsum("bk,kbw->bw", weights, torch.stack(list(experts)))


class _Level(nn.Module):
    """One PLE level: experts per task and shared, a gate per task, optionally a shared gate."""

    def __init__(self, tasks: Sequence[str], in_features: int, experts: int, width: int,
                 depth: int, shared_gate: bool) -> None:
        super().__init__()
        self.own = nn.ModuleDict({t: nn.ModuleList([mlp(in_features, width, depth)
                                                    for _ in range(experts)]) for t in tasks})
        self.shared = nn.ModuleList([mlp(in_features, width, depth) for _ in range(experts)])
        self.gates = nn.ModuleDict({t: nn.Sequential(nn.Flatten(),
                                                     nn.Linear(in_features, 2 * experts))
                                    for t in tasks})
        self.shared_gate = (nn.Sequential(nn.Flatten(), nn.Linear(
            in_features, (len(tasks) + 1) * experts)) if shared_gate else None)

    def forward(self, inputs: dict[str, torch.Tensor], shared_in: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        shared = [expert(shared_in) for expert in self.shared]
        own = {t: [expert(inputs[t]) for expert in cast(nn.ModuleList, experts)]
               for t, experts in self.own.items()}
        out = {t: mix(self.gates[t], inputs[t], own[t] + shared) for t in own}
        if self.shared_gate is None:
            return out, None
        every = [e for t in own for e in own[t]] + shared
        return out, mix(self.shared_gate, shared_in, every)


class PLE(Encoder):
    """Progressive Layered Extraction (``levels`` levels; one level is CGC); ``forward`` returns
    ``task -> B×width``."""

    def __init__(self, tasks: Sequence[str], in_features: int, levels: int, experts: int,
                 width: int, depth: int = DEPTH) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.levels = nn.ModuleList([
            _Level(self.tasks, in_features if i == 0 else width, experts, width, depth,
                   shared_gate=i < levels - 1) for i in range(levels)])
        self.out_features = width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs: dict[str, torch.Tensor] = dict.fromkeys(self.tasks, x)
        shared: torch.Tensor | None = x
        for level in self.levels:
            assert shared is not None  # only the last level has no shared gate
            inputs, shared = level(inputs, shared)
        return inputs


class MMoE(Encoder):
    """Multi-gate Mixture-of-Experts: shared experts, a softmax gate per task; ``forward``
    returns ``task -> B×width``."""

    def __init__(self, tasks: Sequence[str], in_features: int, experts: int, width: int,
                 depth: int = DEPTH) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.experts = nn.ModuleList([mlp(in_features, width, depth) for _ in range(experts)])
        self.gates = nn.ModuleDict({t: nn.Sequential(nn.Flatten(), nn.Linear(in_features,
                                                                             experts))
                                    for t in self.tasks})
        self.out_features = width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = [expert(x) for expert in self.experts]
        return {t: mix(self.gates[t], x, outputs) for t in self.tasks}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The experts; each task's gate is its own."""
        return list(self.experts.parameters())


def _positive(values: dict[str, int], spec: str) -> None:
    bad = [k for k, v in values.items() if v < 1]
    if bad:
        raise ScalarizeError(f"model {spec}: {', '.join(bad)} must be at least 1")


def build_experts(family: str, knobs: str, tasks: Sequence[str],
                  image_shape: Sequence[int]) -> Encoder:
    """``family`` (``mmoe``, ``ple`` or ``cgc``) from the knobs that follow its name, for
    ``tasks`` over inputs of ``image_shape`` (flattened)."""
    in_features = math.prod(int(d) for d in image_shape)
    if family == "mmoe":
        match = _MMOE.match(knobs)
        grammar = "mmoe-e<experts>-w<width>[-d<depth>], e.g. mmoe-e4-w64"
    elif family == "cgc":
        match = _MMOE.match(knobs)
        grammar = "cgc-e<experts>-w<width>[-d<depth>], e.g. cgc-e2-w64"
    else:
        match = _PLE.match(knobs)
        grammar = "ple-l<levels>-e<experts>-w<width>[-d<depth>], e.g. ple-l2-e2-w64"
    if not match:
        raise ScalarizeError(f"cannot read {family} spec '{family}{knobs}'; write {grammar}")
    numbers = [int(g) if g else DEPTH for g in match.groups()]
    spec = f"{family}{knobs}"
    if family == "ple":
        levels, experts, width, depth = numbers
        _positive({"levels": levels, "experts": experts, "width": width, "depth": depth}, spec)
        return PLE(tasks, in_features, levels, experts, width, depth)
    experts, width, depth = numbers
    _positive({"experts": experts, "width": width, "depth": depth}, spec)
    if family == "cgc":
        return PLE(tasks, in_features, 1, experts, width, depth)
    return MMoE(tasks, in_features, experts, width, depth)


def _flat_shape(image_shape: Sequence[int] | None, input_shape: Sequence[int] | None
                ) -> Sequence[int]:
    """The one input shape a factory was given (the builder gives exactly one)."""
    shape = image_shape if image_shape is not None else input_shape
    if shape is None:
        raise ScalarizeError("an experts model needs image_shape= or input_shape=")
    return shape


def mmoe(knobs: str = "", *, tasks: Sequence[str],
         image_shape: tuple[int, int, int] | None = None,
         input_shape: tuple[int, ...] | None = None) -> Encoder:
    """The ``mmoe-e<experts>-w<width>[-d<depth>]`` family for ``tasks``
    (images, tabular features and float sequences flattened)."""
    return build_experts("mmoe", knobs, tasks, _flat_shape(image_shape, input_shape))


def ple(knobs: str = "", *, tasks: Sequence[str],
        image_shape: tuple[int, int, int] | None = None,
        input_shape: tuple[int, ...] | None = None) -> Encoder:
    """The ``ple-l<levels>-e<experts>-w<width>[-d<depth>]`` family for ``tasks``
    (images, tabular features and float sequences flattened)."""
    return build_experts("ple", knobs, tasks, _flat_shape(image_shape, input_shape))


def cgc(knobs: str = "", *, tasks: Sequence[str],
        image_shape: tuple[int, int, int] | None = None,
        input_shape: tuple[int, ...] | None = None) -> Encoder:
    """The ``cgc-e<experts>-w<width>[-d<depth>]`` family (PLE with one level) for ``tasks``
    (images, tabular features and float sequences flattened)."""
    return build_experts("cgc", knobs, tasks, _flat_shape(image_shape, input_shape))


__all__ = ["PLE", "MMoE", "build_experts", "cgc", "mix", "mlp", "mmoe", "ple"]
