"""``nyuv2`` and ``cityscapes``: dense multi-task learning on the preprocessed ``.npy`` data of
MTAN, LibMTL, Nash-MTL and FAMO, read lazily one file per example and task.

The layout, as read by MTAN's ``im2im_pred/create_dataset.py`` (lorenmt/mtan, class
``NYUv2``), LibMTL's ``examples/nyu/create_dataset.py`` (class ``NYUv2``: ``np.load`` of
``<root>/<split>/image/{index}.npy`` moved to channels-first, likewise ``label``, ``depth`` and
``normal``; the augmented flip negates the normals' x channel) and Nash-MTL's
``experiments/cityscapes/data.py`` (``label_7/{index}.npy`` and ``depth``)::

    root/train/image/<index>.npy     H×W×3 float32 in [0, 1]
    root/train/<labels>/<index>.npy  H×W float class per pixel, −1 = unlabelled
    root/train/depth/<index>.npy     H×W×1 float32, 0 = no depth
    root/train/normal/<index>.npy    H×W×3 float32 unit vectors, 0 = no normal (NYUv2 only)
    root/val/...                     the same, for the evaluation split

=========== ========= ============================================== ==========================
benchmark   size      tasks (kind)                                   download (not automatic)
=========== ========= ============================================== ==========================
nyuv2       288×384   segmentation (13 classes, folder ``label``),   MTAN's ``nyuv2.zip``
                      depth (``depth_map``), normal (``normal_map``)
cityscapes  128×256   segmentation (7 classes, folder ``label_7``),  MTAN's ``cityscapes2.zip``
                      depth (inverse depth, ``depth_map``)
=========== ========= ============================================== ==========================

Cityscapes' ``labels`` option picks MTAN's 2-, 7- or 19-class folder (``label_2``, ``label_7``,
``label_19``; a plain ``label`` folder is read when ``label_7`` is absent). The published
protocol trains on ``train`` and reports the last epoch on ``val``: here ``val`` is the test
split, and also the validation split unless ``val_share`` carves a seeded share of ``train``
for it (do so before selecting anything on validation scores). ``limit`` keeps the first N
examples of each folder. Images are taken as they are (floats in [0, 1], not normalised, as
in those repositories). Missing pixels (label −1, depth 0, zero normals) count for neither
loss nor metrics (:mod:`scalarize.training.dense_kinds`). Each benchmark declares the columns
of its published table (mIoU, Pix Acc, Abs Err, ...), which ``scalarize compare`` prints with
Δm%.

Example:
    >>> import tempfile
    >>> from scalarize.benchmarks.fixtures import write_fixture
    >>> data = load_nyuv2(**write_fixture("nyuv2", tempfile.mkdtemp()))
    >>> [(t.name, t.kind) for t in data.tasks]
    [('segmentation', 'segmentation'), ('depth', 'depth_map'), ('normal', 'normal_map')]
    >>> data.splits["train"][0][1]["normal"].shape
    (3, 24, 32)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset as TorchDataset

from scalarize.benchmarks.base import Column, Dataset, Task, View, seeded_split, select_tasks
from scalarize.benchmarks.stream import StreamSplit
from scalarize.errors import ScalarizeError

NYUV2_WHERE = ("MTAN's preprocessed NYUv2 (https://github.com/lorenmt/mtan: nyuv2.zip, "
               "also linked from LibMTL's examples/nyu)")
CITYSCAPES_WHERE = ("MTAN's preprocessed Cityscapes at 128×256 (https://github.com/lorenmt/"
                    "mtan: cityscapes2.zip)")


class NpyOptions(BaseModel):
    """Options of the ``nyuv2`` and ``cityscapes`` benchmarks."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    val_share: float = Field(0.0, ge=0.0, lt=1.0, description="share of train held out as the "
                             "validation split (0: validate on the val folder, as published)")
    limit: int | None = Field(None, ge=1, description="first N examples of each folder")
    labels: str | None = Field(None, description="segmentation folder (cityscapes: label_2, "
                               "label_7 or label_19)")
    download: bool = Field(False, description="not offered: the archives sit behind links")


@dataclass(frozen=True)
class NpyTask:
    """One task of a layout: its folder, kind, kind options and description."""

    folder: str
    kind: str
    description: str
    classes: int = 0
    options: tuple[tuple[str, object], ...] = ()

    def task(self, name: str) -> Task:
        return Task(name, self.classes, self.description, self.kind, dict(self.options))


def _label(channels_last: np.ndarray) -> np.ndarray:
    """A H×W float class map as int8 (−1 stays −1)."""
    return np.rint(channels_last).astype(np.int8)


def _channels_first(array: np.ndarray) -> np.ndarray:
    """H×W×C (or H×W) floats as C×H×W float32."""
    if array.ndim == 2:
        array = array[..., None]
    return np.ascontiguousarray(np.moveaxis(array, -1, 0), dtype=np.float32)


class NpyFolder(TorchDataset[tuple[np.ndarray, dict[str, np.ndarray]]]):
    """The examples ``indices`` of one split folder: ``(image C×H×W float32, {task: map})``
    (segmentation int8 H×W, depth 1×H×W, normals 3×H×W float32)."""

    def __init__(self, folder: Path, tasks: dict[str, str], indices: list[int]) -> None:
        self.folder, self.tasks, self.indices = folder, tasks, indices

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, sub: str, index: int) -> np.ndarray:
        path = self.folder / sub / f"{index}.npy"
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise ScalarizeError(f"{path} is missing; every example needs a file in each "
                                 "task folder") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ScalarizeError(f"{path} is corrupt or truncated ({exc}); download the data "
                                 "again") from None
        if array.dtype.kind not in "fiu":
            raise ScalarizeError(f"{path} holds {array.dtype} values; expected numbers")
        return array

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        index = self.indices[i]
        image = self._load("image", index)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ScalarizeError(f"{self.folder / 'image' / f'{index}.npy'} has shape "
                                 f"{image.shape}; expected H×W×3")
        targets = {}
        for name, sub in self.tasks.items():
            array = self._load(sub, index)
            if array.shape[:2] != image.shape[:2]:
                raise ScalarizeError(f"{self.folder / sub / f'{index}.npy'} has shape "
                                     f"{array.shape}; expected {image.shape[:2]} like its image")
            targets[name] = _label(array) if array.ndim == 2 else _channels_first(array)
        return _channels_first(image), targets


def folder_indices(folder: Path, subs: list[str], where: str) -> list[int]:
    """The sorted example indices of a split ``folder`` (its ``image/<index>.npy`` files),
    checked to have a file in every one of ``subs``."""
    images = folder / "image"
    if not images.is_dir():
        raise ScalarizeError(f"{images} is missing; put {where} under the benchmark root "
                             "(root/train/image/0.npy, ...)")
    try:
        indices = sorted(int(p.stem) for p in images.glob("*.npy"))
    except ValueError:
        raise ScalarizeError(f"{images} holds .npy files not named <index>.npy") from None
    if not indices:
        raise ScalarizeError(f"{images} holds no <index>.npy files")
    for sub in subs:
        have = {p.name for p in (folder / sub).glob("*.npy")}
        missing = [i for i in indices if f"{i}.npy" not in have]
        if missing:
            raise ScalarizeError(f"{folder / sub / f'{missing[0]}.npy'} is missing "
                                 f"({len(missing)} of {len(indices)} files of {sub}/); "
                                 f"download {where} again")
    return indices


def load_npy_benchmark(name: str, layout: dict[str, NpyTask], columns: tuple[Column, ...],
                       where: str, view: View, tasks: list[str] | None, seed: int,
                       opts: NpyOptions) -> Dataset:
    """A benchmark in the preprocessed ``.npy`` layout (see the module docstring)."""
    if opts.download:
        raise ScalarizeError(f"{name} cannot be downloaded for you: fetch {where}, unpack it "
                             f"and give its folder (holding train/ and val/) as "
                             "benchmark.options.root")
    if view != "mtl":
        raise ScalarizeError(f"{name} has no domains; use benchmark.view=mtl")
    chosen = select_tasks(tuple(spec.task(n) for n, spec in layout.items()), tasks)
    subs = {t.name: layout[t.name].folder for t in chosen}
    found = {}
    for split in ("train", "val"):
        folder = opts.root / split
        found[split] = NpyFolder(folder, subs, folder_indices(folder, list(subs.values()),
                                                              where)[:opts.limit])
    train, evaluation = found["train"], found["val"]
    val = evaluation
    if opts.val_share > 0:
        held, kept = seeded_split(len(train), opts.val_share, np.random.default_rng(seed))
        if not len(held) or not len(kept):
            raise ScalarizeError(f"val_share {opts.val_share} of {len(train)} training "
                                 "examples leaves a split empty; change it or the limit")
        val = NpyFolder(train.folder, subs, [train.indices[i] for i in held])
        train = NpyFolder(train.folder, subs, [train.indices[i] for i in kept])
    splits = {"train": StreamSplit(train), "val": StreamSplit(val),
              "test": StreamSplit(evaluation)}
    names = {t.name for t in chosen}
    return Dataset(name, view, chosen, splits,
                   info={"kinds": {t.name: t.kind for t in chosen}},
                   columns=tuple(c for c in columns if c.task in names))


NYUV2 = {
    "segmentation": NpyTask("label", "segmentation", "13-class semantic segmentation", 13,
                            (("ignore", -1),)),
    "depth": NpyTask("depth", "depth_map", "depth in metres"),
    "normal": NpyTask("normal", "normal_map", "surface normals"),
}
SEGMENTATION_COLUMNS = (
    Column("Segmentation", "mIoU", "segmentation", "score", True, 100.0),
    Column("Segmentation", "Pix Acc", "segmentation", "pixel_acc", True, 100.0),
)
DEPTH_COLUMNS = (
    Column("Depth", "Abs Err", "depth", "abs_err", False),
    Column("Depth", "Rel Err", "depth", "rel_err", False),
)
NYUV2_COLUMNS = (*SEGMENTATION_COLUMNS, *DEPTH_COLUMNS,
                 Column("Surface Normal", "Mean", "normal", "mean_angle", False),
                 Column("Surface Normal", "Median", "normal", "median_angle", False),
                 Column("Surface Normal", "11.25", "normal", "within_11_25", True, 100.0),
                 Column("Surface Normal", "22.5", "normal", "within_22_5", True, 100.0),
                 Column("Surface Normal", "30", "normal", "within_30", True, 100.0))


def load_nyuv2(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
               **options: object) -> Dataset:
    """NYUv2 (795 train, 654 val images at 288×384) from ``root``; see the module docstring."""
    opts = NpyOptions.model_validate(options)
    if opts.labels is not None:
        raise ScalarizeError("nyuv2 has one segmentation folder (label); drop "
                             "benchmark.options.labels")
    return load_npy_benchmark("nyuv2", NYUV2, NYUV2_COLUMNS, NYUV2_WHERE, view, tasks, seed,
                              opts)


CITYSCAPES_CLASSES = {"label_2": 2, "label_7": 7, "label_19": 19, "label": 7}


def load_cityscapes(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
                    **options: object) -> Dataset:
    """Cityscapes (2975 train, 500 val images at 128×256) from ``root``, with MTAN's 7-class
    labels unless ``labels`` says otherwise; see the module docstring."""
    opts = NpyOptions.model_validate(options)
    labels = opts.labels
    if labels is None:
        labels = "label" if not (opts.root / "train" / "label_7").is_dir() and (
            opts.root / "train" / "label").is_dir() else "label_7"
    if labels not in CITYSCAPES_CLASSES:
        raise ScalarizeError(f"cityscapes labels {labels!r} is not one of MTAN's folders; use "
                             f"{', '.join(k for k in CITYSCAPES_CLASSES if k != 'label')}")
    classes = CITYSCAPES_CLASSES[labels]
    layout = {
        "segmentation": NpyTask(labels, "segmentation",
                                f"{classes}-class semantic segmentation", classes,
                                (("ignore", -1),)),
        "depth": NpyTask("depth", "depth_map", "inverse depth (disparity)"),
    }
    return load_npy_benchmark("cityscapes", layout, (*SEGMENTATION_COLUMNS, *DEPTH_COLUMNS),
                              CITYSCAPES_WHERE, view, tasks, seed, opts)


__all__ = ["NYUV2_COLUMNS", "NpyFolder", "NpyOptions", "folder_indices", "load_cityscapes",
           "load_nyuv2"]
