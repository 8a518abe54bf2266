"""A small multi-task problem generated on the fly: one bright square on a dark, noisy
background per image, and three tasks about it.

- ``colour`` (classification, 3 classes): which channel (red, green, blue) dominates the square;
- ``mask`` (segmentation, 2 classes): the square's pixels;
- ``size`` (regression, one value per image): the square's side as a share of the image.

The same data two ways: :func:`load` hands scalarize in-memory arrays (a benchmark loader,
named in configs as ``toydata:load``), and :class:`ToySquares` is a map-style
``torch.utils.data.Dataset`` that draws each example when it is read (the streaming path).
"""

from __future__ import annotations

import numpy as np
import torch

import scalarize.api as sz

TASKS = [sz.task("colour", classes=3),
         sz.task("mask", kind="segmentation", classes=2),
         sz.task("size", kind="regression", dense=False, tolerance=0.05)]


def square(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, object]]:
    """One image (3×size×size uint8) and its targets."""
    side = int(rng.integers(size // 6, size // 2))
    top, left = (int(v) for v in rng.integers(0, size - side, 2))
    image = rng.normal(40, 20, (3, size, size))
    colour = int(rng.integers(0, 3))
    rgb = rng.uniform(60, 160, 3)
    rgb[colour] = rng.uniform(200, 255)
    image[:, top:top + side, left:left + side] = rgb[:, None, None]
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:top + side, left:left + side] = 1
    targets = {"colour": colour, "mask": mask, "size": np.float32(side / size)}
    return np.clip(image, 0, 255).astype(np.uint8), targets


def arrays(n: int, size: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` examples as stacked arrays."""
    rng = np.random.default_rng(seed)
    items = [square(rng, size) for _ in range(n)]
    x = np.stack([image for image, _ in items])
    labels = {task: np.stack([targets[task] for _, targets in items])
              for task in ("colour", "mask", "size")}
    return x, labels


def load(view: str = "mtl", tasks: list[str] | None = None, seed: int = 0,
         n_train: int = 512, n_test: int = 256, size: int = 16) -> sz.Dataset:
    """The benchmark loader scalarize calls for ``benchmark.name: toydata:load``."""
    chosen = [t for t in TASKS if tasks is None or t.name in tasks]
    return sz.from_arrays(chosen, train=arrays(n_train, size, seed),
                          test=arrays(n_test, size, seed + 1), name="toydata", seed=seed)


class ToySquares(torch.utils.data.Dataset):
    """The same problem, drawn per example when read (example ``i`` is always the same)."""

    def __init__(self, n: int, size: int = 16, seed: int = 0) -> None:
        self.n, self.size, self.seed = n, size, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, object]]:
        return square(np.random.default_rng([self.seed, i]), self.size)


def stream(view: str = "mtl", tasks: list[str] | None = None, seed: int = 0,
           n_train: int = 512, n_test: int = 256, size: int = 16) -> sz.Dataset:
    """The same benchmark streamed (``benchmark.name: toydata:stream``): nothing is held in
    memory; DataLoader workers (``train.workers``) draw the examples as they are read."""
    chosen = [t for t in TASKS if tasks is None or t.name in tasks]
    return sz.from_datasets(chosen, train=ToySquares(n_train, size, seed),
                            test=ToySquares(n_test, size, seed + 1), name="toydata", seed=seed)
