"""Tiny data sets written in the official on-disk formats of the real benchmarks.

The tests read them to check the readers, and ``--smoke`` trains a paper preset on them on a
CPU in seconds (the real data sets are tens of gigabytes and cannot be shipped). Each writer
fills ``root`` and returns the ``benchmark.options`` that read it back. Pixels are
deterministic (seeded noise on top of a per-class colour, so a model can learn something).

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> write_fixture("celeba", root)["image_size"]
    16
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scalarize.registry import Registry

FIXTURES: Registry[dict[str, Any]] = Registry("benchmark fixture")


def _noisy(rng: np.random.Generator, colour: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """H×W×3 uint8: ``colour`` plus seeded noise."""
    noise = rng.integers(-30, 31, (*shape, 3))
    return np.clip(colour + noise, 0, 255).astype(np.uint8)


def _colour(label: int) -> np.ndarray:
    return np.array([(label * 67) % 256, (label * 151 + 40) % 256, (label * 29 + 90) % 256])


@FIXTURES.register("cifar10_stl10")
def write_cifar_stl(root: Path, per_batch: int = 20, stl_train: int = 40, stl_test: int = 20
                    ) -> dict[str, Any]:
    """CIFAR-10 python batches and STL-10 binaries (column-major images, labels 1..10)."""
    rng = np.random.default_rng(0)
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir(parents=True, exist_ok=True)
    for name in [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        images = np.stack([_noisy(rng, _colour(y), (32, 32)) for y in labels])
        batch = {b"data": images.transpose(0, 3, 1, 2).reshape(per_batch, -1),
                 b"labels": labels.tolist(), b"batch_label": name.encode()}
        # protocol 3: byte strings and numpy arrays pickled through the globals the official
        # python-2 files name (protocol 5 would use numpy's _frombuffer, which the reader
        # refuses; 2 would write bytes through _codecs.encode)
        (cifar / name).write_bytes(pickle.dumps(batch, protocol=3))
    stl = root / "stl10_binary"
    stl.mkdir(parents=True, exist_ok=True)
    for split, n in [("train", stl_train), ("test", stl_test)]:
        labels = rng.integers(1, 11, n)
        images = np.stack([_noisy(rng, _colour(y - 1), (96, 96)) for y in labels])
        images.transpose(0, 3, 2, 1).tofile(stl / f"{split}_X.bin")  # channel, column, row
        labels.astype(np.uint8).tofile(stl / f"{split}_y.bin")
    return {"root": str(root), "image_size": 16}


@FIXTURES.register("celeba")
def write_celeba(root: Path, n: int = 60) -> dict[str, Any]:
    """``img_align_celeba/`` JPEGs (178×218) and the attribute and partition lists of the 40
    real attributes; the first two set the red and green brightness, the rest are noise."""
    from scalarize.benchmarks.celeba import ATTRIBUTES

    rng = np.random.default_rng(1)
    values = rng.choice([-1, 1], (n, len(ATTRIBUTES)))
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    for file, row in zip(files, values, strict=True):
        colour = np.array([200 if row[0] > 0 else 60, 200 if row[1] > 0 else 60, 128])
        Image.fromarray(_noisy(rng, colour, (218, 178))).save(folder / file, quality=90)
    lines = [str(n), " ".join(ATTRIBUTES)]
    lines += [f"{f} " + " ".join(f"{v:2d}" for v in row) for f, row in zip(files, values,
                                                                           strict=True)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [0 if i < n * 0.6 else 1 if i < n * 0.8 else 2 for i in range(n)]
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{f} {p}\n" for f, p in zip(files, partition, strict=True)))
    return {"root": str(root), "image_size": 16}


@FIXTURES.register("domainnet")
def write_domainnet(root: Path, per_split: tuple[int, int] = (24, 8),
                    domains: tuple[str, ...] = ("clipart", "infograph", "painting", "quickdraw",
                                                "real", "sketch")) -> dict[str, Any]:
    """``<domain>/<class>/*.jpg`` folders and ``<domain>_{train,test}.txt`` lists over three of
    the 345 classes."""
    rng = np.random.default_rng(2)
    classes = {"aircraft_carrier": 0, "bicycle": 25, "zebra": 344}
    for d, domain in enumerate(domains):
        for split, n in zip(("train", "test"), per_split, strict=True):
            lines = []
            for i in range(n):
                cls, label = list(classes.items())[i % len(classes)]
                rel = f"{domain}/{cls}/{domain}_{split}_{i:03d}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                colour = _colour(label) * (0.5 + 0.1 * d)
                Image.fromarray(_noisy(rng, colour, (40, 48))).save(root / rel, quality=90)
                lines.append(f"{rel} {label}")
            (root / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    return {"root": str(root), "image_size": 16}


TASKONOMY_BUILDINGS = {"train": ["allensville", "beechwood"], "val": ["coffeen"],
                       "test": ["collierville"]}


def taskonomy_targets(view: int, height: int, width: int) -> dict[str, np.ndarray]:
    """The fixture's arrays of one view (before writing): rgb, depth_zbuffer (with an invalid
    6×6 corner of the centre square), normal, edge_texture, edge_occlusion, segment_semantic
    (four quadrant classes)."""
    rows, cols = np.mgrid[0:height, 0:width]
    left = (width - height) // 2  # the centre square starts here
    depth = np.where(cols < width // 2, 512 * (view + 1), 512 * (view + 2)).astype(np.uint16)
    depth[:6, left:left + 6] = 65535
    quadrant = (rows >= height // 2) * 2 + (cols >= width // 2)
    segment = (quadrant + view) % 4 + 1
    normal = np.zeros((height, width, 3), np.uint8)
    normal[..., 0] = np.where(cols < width // 2, 64, 192)
    normal[..., 1], normal[..., 2] = 128, 255
    rgb = np.stack([segment * 50, depth // 8 % 256, normal[..., 0]], axis=-1).astype(np.uint8)
    return {"rgb": rgb, "depth_zbuffer": depth, "normal": normal,
            "edge_texture": (rows * 100 + view * 10).astype(np.uint16),
            "edge_occlusion": (cols * 20).astype(np.uint16),
            "segment_semantic": segment.astype(np.uint8)}


@FIXTURES.register("taskonomy")
def write_taskonomy(root: Path, views: int = 4, height: int = 32, width: int = 40,
                    buildings: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """``<task>/<building>/point_<p>_view_0_domain_<task>.png`` for rgb and five tasks
    (16-bit PNGs for depth and edges, an 8-bit class map), and the split CSV."""
    buildings = buildings or TASKONOMY_BUILDINGS
    for split_buildings in buildings.values():
        for building in split_buildings:
            for view in range(views):
                for task, array in taskonomy_targets(view, height, width).items():
                    folder = root / task / building
                    folder.mkdir(parents=True, exist_ok=True)
                    name = f"point_{view}_view_0_domain_{task}.png"
                    Image.fromarray(array).save(folder / name)
    rows = ["id,train,val,test"]
    rows += [f"{b},{int(s == 'train')},{int(s == 'val')},{int(s == 'test')}"
             for s, names in buildings.items() for b in names]
    (root / "train_val_test_fixture.csv").write_text("\n".join(rows) + "\n")
    return {"root": str(root), "split_file": "train_val_test_fixture.csv", "image_size": 16}


def write_fixture(name: str, root: Path | str) -> dict[str, Any]:
    """Write benchmark ``name``'s fixture under ``root``; returns its ``benchmark.options``."""
    writer: Callable[..., dict[str, Any]] = FIXTURES.get(name)
    return writer(Path(root))


def dense_npy_example(index: int, height: int, width: int, classes: int
                      ) -> dict[str, np.ndarray]:
    """One example of the preprocessed NYUv2 / Cityscapes layout (arrays as saved): four
    quadrants of classes that shift with ``index``, a colour and a depth per class, normals
    tilting left or right, an unlabelled top row (−1), a pixel without depth (0) and one
    without normal (zero vector)."""
    rng = np.random.default_rng(index)
    rows, cols = np.mgrid[0:height, 0:width]
    label = (((rows >= height // 2) * 2 + (cols >= width // 2) + index) % classes
             ).astype(np.float32)
    colour = np.stack([_colour(int(c)) for c in range(classes)])[label.astype(int)] / 255.0
    image = np.clip(colour + rng.normal(0, 0.05, colour.shape), 0, 1).astype(np.float32)
    depth = (1.0 + 0.25 * label)[..., None].astype(np.float32)
    tilt = np.where(cols < width // 2, -0.6, 0.6)
    normal = np.stack([tilt, np.zeros_like(tilt), np.full_like(tilt, 0.8)], -1)
    label[0] = -1
    depth[-1, -1] = 0
    normal[-1, 0] = 0
    return {"image": image, "label": label, "depth": depth, "normal": normal.astype(np.float32)}


def _write_dense_npy(root: Path, sizes: dict[str, int], height: int, width: int, classes: int,
                     folders: dict[str, str]) -> None:
    for split, n in sizes.items():
        for index in range(n):
            arrays = dense_npy_example(index + (1000 if split == "val" else 0), height, width,
                                       classes)
            for key, folder in folders.items():
                path = root / split / folder
                path.mkdir(parents=True, exist_ok=True)
                np.save(path / f"{index}.npy", arrays[key])


@FIXTURES.register("nyuv2")
def write_nyuv2(root: Path, train: int = 12, val: int = 6, height: int = 24, width: int = 32
                ) -> dict[str, Any]:
    """``train/`` and ``val/`` with ``image``, ``label`` (13 classes), ``depth`` and ``normal``
    folders of ``<index>.npy`` files, at 24×32 (the real data: 288×384)."""
    _write_dense_npy(root, {"train": train, "val": val}, height, width, 13,
                     {"image": "image", "label": "label", "depth": "depth",
                      "normal": "normal"})
    return {"root": str(root)}


@FIXTURES.register("cityscapes")
def write_cityscapes(root: Path, train: int = 12, val: int = 6, height: int = 16,
                     width: int = 32) -> dict[str, Any]:
    """``train/`` and ``val/`` with ``image``, ``label_7`` (7 classes) and ``depth`` folders of
    ``<index>.npy`` files, at 16×32 (the real data: 128×256)."""
    _write_dense_npy(root, {"train": train, "val": val}, height, width, 7,
                     {"image": "image", "label": "label_7", "depth": "depth"})
    return {"root": str(root)}
