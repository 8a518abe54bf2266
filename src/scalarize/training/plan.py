"""A run plan: one run config resolved against its data, once, into what the trainer takes.

The device, the data, the objectives, the weights (parsed once), the method and the callbacks
the config asks for are resolved once (here, or by ``launch.check_run``);
:class:`~scalarize.training.Trainer` takes them as they are. The model is not in the plan:
building it draws from the random generator, so the trainer builds it right after seeding it
with the run's seed (the launch layer checks it beforehand on the ``meta`` device). The method
is in the plan when building it drew nothing from torch's generator (every built-in method);
one that draws (a user's, with random parameters) is left to the trainer, which builds it
where it always did, after the model, so its numbers do not change.

Example:
    >>> from scalarize.config import load_config
    >>> cfg = load_config(None, ["scalarization.weights=onehot:shape",
    ...     "benchmark.options={n_train: 32, n_val: 8, n_test: 8, image_size: 16, cache: false}"])
    >>> plan = RunPlan.resolve(cfg)
    >>> plan.weights.label(), plan.objectives.names[:2], plan.callbacks
    ('onehot-shape', ('shape', 'colour'), ())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from pydantic import ValidationError

from scalarize.benchmarks import Dataset, load_benchmark
from scalarize.config import RunConfig, validation_message
from scalarize.errors import ScalarizeError
from scalarize.methods import Method, build_method
from scalarize.training.objectives import Objectives, build_objectives
from scalarize.weights import SimplexWeights, parse_weights

if TYPE_CHECKING:
    from scalarize.training.callbacks import Callback


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ScalarizeError("train.device=cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def seed_torch(seed: int, device: torch.device) -> None:
    """Seed torch's random generator for a run on ``device``: the CPU's alone for a CPU run,
    every device's (``torch.manual_seed``) otherwise. A CPU run draws from no other device's
    generator, and ``torch.manual_seed`` also queues a lazy seed for each accelerator kind
    torch knows (CUDA, MPS, XPU, MTIA), each recording its call stack: about 0.3 ms (more
    under a deep call stack), 7% of a small tabular model's start
    (``benchmarks/step_overhead.py --data tabular``, docs/benchmarks.md).

    Example:
        >>> seed_torch(3, torch.device("cpu"))
        >>> a = torch.rand(2)
        >>> _ = torch.manual_seed(3)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    if device.type == "cpu":
        torch.random.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def load_data(config: RunConfig) -> Dataset:
    """The benchmark named in ``config``, with option errors turned into one clear line."""
    bench = config.benchmark
    try:
        return load_benchmark(bench.name, view=bench.view, tasks=bench.tasks, seed=bench.seed,
                              **bench.options)
    except ValidationError as exc:
        raise ScalarizeError(
            validation_message(exc, f"invalid benchmark.options for {bench.name!r}")
        ) from None


@dataclass(frozen=True)
class RunPlan:
    """What one run trains with, resolved once from its config: a plan serves one trainer
    (the method and the callbacks it holds keep the run's state).

    ``callbacks`` are those the config itself asks for (a weight schedule, probes), run
    before any the caller adds; a plan that a bare :class:`~scalarize.training.Trainer`
    resolves for itself has none, as it always had.
    """

    config: RunConfig
    data: Dataset
    device: torch.device
    objectives: Objectives
    weights: SimplexWeights
    method: Method | None  # None: built by the trainer after the model (see the module doc)
    callbacks: tuple[Callback, ...] = ()

    @classmethod
    def resolve(cls, config: RunConfig, data: Dataset | None = None,
                callbacks: Sequence[Callback] = ()) -> RunPlan:
        """Resolve ``config`` on ``data`` (loaded from the config when ``None``); a mistake
        is one :class:`ScalarizeError` line."""
        device = resolve_device(config.train.device)
        data = data if data is not None else load_data(config)
        objectives = build_objectives(data, config.model.shared_head)
        weights = parse_weights(config.scalarization.weights, objectives.names)
        method = method_drawing_nothing(config, len(objectives.names))
        return cls(config, data, device, objectives, weights, method, tuple(callbacks))


def method_drawing_nothing(config: RunConfig, count: int) -> Method | None:
    """The config's method for ``count`` objectives (a bad name or option is one
    :class:`ScalarizeError` line), or ``None`` when building it drew from torch's random
    generator: the generator is then put back, and the trainer builds the method after the
    model, where a run always built it."""
    state = torch.random.get_rng_state()
    method = build_method(config.method.name, config.method.options, count)
    if torch.equal(state, torch.random.get_rng_state()):
        return method
    torch.random.set_rng_state(state)
    return None


__all__ = ["RunPlan", "load_data", "method_drawing_nothing", "resolve_device", "seed_torch"]
