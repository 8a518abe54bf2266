"""Benchmarks: a registry of ``name -> loader(view, tasks, seed, **options) -> Dataset``.

Adding a benchmark means one module with a loader and one line below.
"""

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
    return BENCHMARKS.get(name)(view=view, tasks=tasks, seed=seed, **options)


__all__ = ["BENCHMARKS", "SPLITS", "Column", "Dataset", "Split", "StreamSplit", "Task", "View",
           "load_benchmark", "stream_split"]
