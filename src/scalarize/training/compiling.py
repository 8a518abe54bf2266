"""Compiled training: ``train.compile`` (``auto`` | ``true`` | ``false``) resolved once per run,
and the encoder's forward and backward compiled with ``torch.compile`` for the training batch.

What is compiled, and why only that:

- the **encoder's forward and backward** (through AOTAutograd) for full training batches, with
  gradients on and the model in training mode: that is where the arithmetic is. The heads, the
  losses, the method and the optimiser step stay eager, so every method sees the same graph
  interface (``features`` → heads → losses).
- other batches (the last, smaller batch of an epoch, a two-batch method's halves, evaluation,
  a method's no-grad recomputation) run the same module **eagerly**: they never trigger a
  recompile, and one compiled graph per architecture serves every run of a sweep in a process
  (Dynamo treats the parameters of a fresh model of the same architecture as inputs).
- a compiled graph is backpropagated **once**. Backpropagating it again (``retain_graph=True``:
  per-objective gradients) gives wrong gradients — measured on torch 2.13 CPU, resnet8-x0.125,
  5 tasks: per-objective encoder gradients off by 0.19 where they are 0.09 at most — or, with
  AOTAutograd's donated buffers, an error. So a method opts in with ``compiles = True`` when
  its backward runs the encoder's graph once (static, the loss-based ones, GradNorm, MGDA-UB);
  the others (torchjd's Jacobian methods, the half-batch ones, a user's method that says
  nothing) train eagerly, with one warning line where ``train.compile=true`` asked; and a step
  on which a callback takes its own gradients (the conflict probe's every ``every`` steps,
  :meth:`~scalarize.training.Callback.takes_gradients`) runs eagerly. Compiled and eager
  training of every method that compiles agree to float32 rounding
  (tests/training/test_compiling.py).

Inductor's layout optimisation (channels-last convolutions) is switched off: on CPU with
torch 2.13, channels-last ``convolution_backward`` corrupts the heap for small channel counts
(resnet8-x0.25 aborts with ``free(): invalid next size``; a 4→8 1×1 stride-2 convolution hangs),
in eager mode too. Kept in NCHW, compiled and eager runs use the same kernels for convolutions.

``auto`` compiles on CUDA (where Dynamo and Triton are there) and not on CPU: on this project's
CPU models compiling paid 0.99–1.17× per step (resnet8 ×0.125–×2.0 at batch 32 and 128,
vit-d3-w48-p4, deeplab10-x0.125) for 18–22 s of cold compile per architecture, and the findings
sweep ran slower end to end with it (``benchmarks/compile_speed.py``, ``docs/benchmarks.md``).
The CUDA default follows PyTorch's guidance; CUDA step times are not measured here yet. A run
resumed under ``auto`` continues in the mode it started in.

Caches: Inductor's and AOTAutograd's on-disk caches live in ``$SCALARIZE_CACHE/torch-compile``
(unless ``TORCHINDUCTOR_CACHE_DIR`` is set), shared by every process on the machine: the runs of
a sweep, its worker processes and Ray workers compile an architecture once, later processes load
it from disk (a warm start).

Example:
    >>> decide_compile("false", "cpu", method_compiles=True).enabled
    False
    >>> decide_compile("auto", "cpu", method_compiles=True).enabled
    False
    >>> d = decide_compile("true", "cpu", method_compiles=False, method="pcgrad")
    >>> d.enabled, d.warning is not None
    (False, True)
    >>> decide_compile("auto", "cpu", method_compiles=False).warning is None
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from scalarize.files import cache_dir
from scalarize.models.per_task import Features

CompileSetting = Literal["auto", "true", "false"]


@dataclass(frozen=True)
class CompileDecision:
    """Whether a run compiles, and the one warning line to print when a requested compile was
    turned down (``None``: nothing to say)."""

    enabled: bool
    warning: str | None = None


def decide_compile(setting: str, device: str, *, method_compiles: bool,
                   method: str = "the method") -> CompileDecision:
    """Resolve ``train.compile`` for one run: ``setting`` as configured, ``device`` the run's
    device type, ``method_compiles`` whether the method's backward can go through a compiled
    encoder. Deterministic: the same config on the same kind of device decides the same."""
    wanted = setting == "true" or (setting == "auto" and device == "cuda" and _can_compile_cuda())
    if not wanted:
        return CompileDecision(False)
    if not method_compiles:  # said only where compiling was asked for, not under auto
        return CompileDecision(False, None if setting == "auto" else
                               f"train.compile: {method} does not declare that it backpropagates "
                               "each step once (Method.compiles), which a compiled graph needs; "
                               "this run trains eagerly")
    return CompileDecision(True)


def _can_compile_cuda() -> bool:
    """Dynamo runs on this Python and Inductor has Triton for CUDA kernels."""
    from torch._dynamo import is_dynamo_supported
    from torch.utils._triton import has_triton

    return bool(is_dynamo_supported() and has_triton())


def compile_cache_dir() -> str:
    """Where Inductor keeps compiled graphs: ``TORCHINDUCTOR_CACHE_DIR`` if set, else
    ``$SCALARIZE_CACHE/torch-compile`` (set for this process and the processes it starts)."""
    folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not folder:
        folder = str(cache_dir() / "torch-compile")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    return folder


class CompiledEncoder:
    """Calls ``model`` compiled for training batches of ``batch_size`` examples (gradients on,
    training mode) and eagerly for everything else, so no other shape or mode compiles.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> run = CompiledEncoder(net, batch_size=4)
        >>> with torch.no_grad():  # evaluation: eager, nothing compiled
        ...     run(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(self, model: nn.Module, batch_size: int) -> None:
        compile_cache_dir()
        import torch._inductor.config as inductor

        inductor.layout_optimization = False  # see the module docstring: channels-last on CPU
        self.model = model
        self.batch_size = batch_size
        self._compiled: Callable[[torch.Tensor], Features] = torch.compile(model, dynamic=False)

    def __call__(self, x: torch.Tensor, eager: bool = False) -> Features:
        """The features of ``x``; ``eager`` forces the eager module (a step whose graph is
        backpropagated more than once)."""
        if (not eager and self.model.training and torch.is_grad_enabled()
                and x.shape[0] == self.batch_size):
            return self._compiled(x)
        return self.model(x)


__all__ = ["CompileDecision", "CompileSetting", "CompiledEncoder", "compile_cache_dir",
           "decide_compile"]
