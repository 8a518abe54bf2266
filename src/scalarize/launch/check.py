"""Check a run config against its data before anything is written or trained, resolving it
once into the plan the trainer takes.

:func:`check_run` builds what a run needs (objectives, weights and weight schedule, the model on
the ``meta`` device, the method, the probes, the device) without allocating or training, so a
mistake in any run of a study is one clear line before the first folder is created; it returns
them as a :class:`~scalarize.training.RunPlan`, so a run builds each of them once.

Example:
    >>> from scalarize.config import load_config
    >>> from scalarize.errors import ScalarizeError
    >>> cfg = load_config(None, ["model.spec=vit-d1-w16-p8",
    ...     "benchmark.options={n_train: 32, n_val: 8, n_test: 8, image_size: 16, cache: false}"])
    >>> data = load_data(cfg)
    >>> check_run(cfg, data).weights.label()
    'uniform'
    >>> try:
    ...     check_run(cfg.derive(spec="vit-d1-w16-p32"), data)
    ... except ScalarizeError as exc:
    ...     print(str(exc).split(";")[0])
    model vit-d1-w16-p32: ViT patch 32 is larger than the 16-pixel image
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.methods.base import needs_shared_features
from scalarize.models import check_model, gives_features_per_task
from scalarize.probes import build_probes
from scalarize.training.callbacks import Callback
from scalarize.training.data import refuse_augment
from scalarize.training.objectives import build_objectives
from scalarize.training.parallel import check_distributes, check_layout
from scalarize.training.plan import RunPlan, load_data, method_drawing_nothing, resolve_device
from scalarize.training.schedule_weights import WeightSchedule
from scalarize.weights import SimplexWeights, parse_weights


def memory_budget(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the GPU's, or the machine's RAM), ``None`` if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_run(config: RunConfig, data: Dataset, *, weights: SimplexWeights | None = None,
              probes: Sequence[Callback] | None = None) -> RunPlan:
    """The plan of ``config`` on ``data``, each part built once; a one-line
    :class:`ScalarizeError` if it cannot train there. ``weights`` and ``probes`` already
    built by the caller are taken as they are. The checks run in a fixed order (device,
    objectives, weights, schedule, model, method, probes, data), so a config with several
    mistakes is always told the same first one."""
    device = resolve_device(config.train.device)
    objectives = build_objectives(data, config.model.shared_head)
    names = objectives.names
    if weights is None:
        weights = parse_weights(config.scalarization.weights, names)
    for epoch, scheduled in config.scalarization.schedule or []:
        if not 0 <= epoch <= config.train.epochs:
            raise ScalarizeError(f"scalarization.schedule has an entry at epoch {epoch}; "
                                 "entries count finished epochs, from 0 to train.epochs "
                                 f"({config.train.epochs})")
        try:
            parse_weights(scheduled, names)
        except ScalarizeError as exc:
            raise ScalarizeError(f"scalarization.schedule at epoch {epoch}: {exc}") from None
    inputs = data.input
    check_model(config.model.spec, inputs, objectives.head_specs(),
                memory_budget(device), config.model.options)
    refuse_augment(config.train.augment is not None, inputs)
    method = method_drawing_nothing(config, len(names))
    if method is not None and method.needs_shared_features and gives_features_per_task(
            config.model.spec, inputs, objectives.head_specs(), config.model.options):
        raise needs_shared_features(config.method.name)
    if config.train.nproc > 1:  # what the processes would each refuse, said once here
        if method is not None:
            check_distributes(config, method, config.train.nproc)
        else:
            check_layout(config, config.train.nproc)
    if probes is None:
        probes = build_probes(config.probes)
    if len(data.splits["train"]) == 0:
        raise ScalarizeError(f"benchmark {config.benchmark.name!r} has no training examples; "
                             "check its options")
    schedule = config.scalarization.schedule  # it runs first, then the probes, as always
    first = [WeightSchedule(schedule)] if schedule is not None else []
    return RunPlan(config, data, device, objectives, weights, method, (*first, *probes))


def check_study(configs: Sequence[RunConfig], data: Dataset | None = None) -> None:
    """:func:`check_run` on every distinct config of a study (seeds and names aside), on
    ``data`` or each config's own."""
    seen = set()
    loaded: dict[str, Dataset] = {}
    for config in configs:
        key = config.model_dump_json(exclude={"seed", "name"})
        if key in seen:
            continue
        seen.add(key)
        if data is None:
            bench = config.benchmark.model_dump_json()
            if bench not in loaded:
                loaded[bench] = load_data(config)
        check_run(config, data if data is not None else loaded[bench])


__all__ = ["check_run", "check_study", "memory_budget"]
