"""Benchmarks: a registry of ``name -> loader(view, tasks, seed, **options) -> Dataset``.

Adding a benchmark means one module with a loader and one line below. A loader (a user's,
named by import target) is checked before it is called and what it returns before anything is
written: one line says what a loader must look like.
"""

import inspect
from collections.abc import Callable
from typing import Any

from scalarize.benchmarks.base import SPLITS, Column, Dataset, Split, Task, View
from scalarize.benchmarks.celeba import load_celeba
from scalarize.benchmarks.cifar_stl import load_cifar_stl
from scalarize.benchmarks.dense_npy import load_cityscapes, load_nyuv2
from scalarize.benchmarks.domainnet import load_domainnet
from scalarize.benchmarks.image_files import load_image_files
from scalarize.benchmarks.npz import load_npz
from scalarize.benchmarks.shapes import load_shapes
from scalarize.benchmarks.stream import StreamSplit, stream_split
from scalarize.benchmarks.taskonomy import load_taskonomy
from scalarize.errors import ScalarizeError
from scalarize.registry import Registry

BENCHMARKS: Registry[Dataset] = Registry("benchmark")
BENCHMARKS.register("shapes")(load_shapes)
BENCHMARKS.register("npz")(load_npz)
BENCHMARKS.register("cifar10_stl10")(load_cifar_stl)
BENCHMARKS.register("celeba")(load_celeba)
BENCHMARKS.register("domainnet")(load_domainnet)
BENCHMARKS.register("taskonomy")(load_taskonomy)
BENCHMARKS.register("image_files")(load_image_files)
BENCHMARKS.register("nyuv2")(load_nyuv2)
BENCHMARKS.register("cityscapes")(load_cityscapes)


def load_benchmark(name: str, view: View = "mtl", tasks: list[str] | None = None,
                   seed: int = 0, **options: object) -> Dataset:
    """Load benchmark ``name`` in ``view`` with its ``options``.

    Example:
        >>> data = load_benchmark("shapes", n_train=32, n_val=8, n_test=8, cache=False)
        >>> data.objectives
        ('shape', 'colour', 'size', 'count', 'balance')
    """
    loader = BENCHMARKS.get(name)
    _check_signature(name, loader, options)
    data = loader(view=view, tasks=tasks, seed=seed, **options)
    if not isinstance(data, Dataset):
        raise ScalarizeError(f"benchmark {name!r}: its loader returned a "
                             f"{type(data).__name__}; {_CONTRACT}")
    return data


_CONTRACT = ("a loader is def load(view, tasks, seed, **options) returning a "
             "scalarize.benchmarks.Dataset (see docs/extending.md, 'Data')")


def _check_signature(name: str, loader: Callable[..., Any], options: dict[str, object]) -> None:
    """One line when ``loader`` cannot be called as ``loader(view=, tasks=, seed=,
    **options)``: the keywords it lacks, or the options it does not take."""
    try:
        signature = inspect.signature(loader)
    except (TypeError, ValueError):  # a builtin without a signature: call it and see
        return
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    takes = {p.name for p in params
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    lacks = [k for k in ("view", "tasks", "seed") if k not in takes]
    if lacks:
        shown = ", ".join(f"{k}=" for k in lacks)
        raise ScalarizeError(f"benchmark {name!r}: its loader{signature} does not take "
                             f"{shown}; {_CONTRACT}")
    unknown = sorted(set(options) - takes)
    if unknown:
        raise ScalarizeError(f"benchmark {name!r}: its loader{signature} takes no option "
                             f"{unknown[0]!r} (given in benchmark.options); remove it or add "
                             "it to the loader's parameters")
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind is not inspect.Parameter.VAR_POSITIONAL
                and p.name not in {"view", "tasks", "seed", *options}]
    if required:
        raise ScalarizeError(f"benchmark {name!r}: its loader{signature} needs "
                             f"{required[0]!r}; give it in benchmark.options")


__all__ = ["BENCHMARKS", "SPLITS", "Column", "Dataset", "Split", "StreamSplit", "Task", "View",
           "load_benchmark", "stream_split"]
