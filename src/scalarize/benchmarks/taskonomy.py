"""``taskonomy``: dense multi-task learning on Taskonomy, read from its per-task PNG folders.

Put under ``root`` the buildings and tasks you use, in the layout Taskonomy's download tools
produce (https://github.com/StanfordVL/taskonomy/tree/master/data, or omnidata-tools'
``omnitools.download ... --components taskonomy``, whose extra ``taskonomy/`` level is
recognised)::

    root/rgb/<building>/point_<p>_view_<v>_domain_rgb.png              (inputs)
    root/<task>/<building>/point_<p>_view_<v>_domain_<task>.png        (one per task)

Tasks (the folder names; pick with ``benchmark.tasks``; default: the first four):

==================== ============ ===========================================================
task                 kind         target
==================== ============ ===========================================================
depth_zbuffer        depth        16-bit PNG in 1/512 m, 65535 = no depth (ignored)
normal               normals      8-bit RGB, (value / 255) × 2 − 1 per axis
edge_texture         regression   16-bit Sobel edges, × 1/1000 (about unit spread)
segment_semantic     segmentation 8-bit class per pixel, ``segment_classes`` values (18)
edge_occlusion       regression   16-bit occlusion edges, × 1/250
==================== ============ ===========================================================

Splits are whole buildings: ``buildings: {train: [...], val: [...], test: [...]}``, or
``split_file``: Taskonomy's ``train_val_test_<size>.csv`` (columns ``id,train,val,test`` with
1 marking the building's split). ``max_per_building`` keeps the first N views of each building
(sorted by name). Images and targets are centre-cropped to a square and resized to
``image_size`` once: RGB and normals by area averaging, depth and edges by area averaging of the
valid pixels only (a pixel with less than half of its area valid stays invalid), segmentation
by nearest neighbour. Each building × task is cached in ``root/.scalarize/`` with a checksum of
its file names and sizes, and memory-mapped on later loads.

Example:
    >>> import tempfile
    >>> from scalarize.benchmarks.fixtures import write_fixture
    >>> options = write_fixture("taskonomy", tempfile.mkdtemp())  # the official layout
    >>> data = load_taskonomy(tasks=["depth_zbuffer", "segment_semantic"], **options)
    >>> [task.kind for task in data.tasks]
    ['depth', 'segmentation']
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from scalarize.benchmarks.base import SPLITS, Dataset, Split, Task, View, select_tasks
from scalarize.benchmarks.images import decode_image, decoded_images, listing_checksum
from scalarize.errors import ScalarizeError

WHERE = ("https://github.com/StanfordVL/taskonomy/tree/master/data (or omnidata-tools: "
         "omnitools.download <tasks> --components taskonomy)")
NO_DEPTH = 65535


class TaskonomyOptions(BaseModel):
    """Options of the ``taskonomy`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    buildings: dict[str, list[str]] | None = Field(
        None, description="building names per split: {train: [...], val: [...], test: [...]}")
    split_file: Path | None = Field(None, description="train_val_test_<size>.csv (relative to "
                                                      "root unless absolute)")
    image_size: int = Field(64, ge=8, le=512)
    max_per_building: int | None = Field(None, ge=1)
    segment_classes: int = Field(18, ge=2, le=256)
    segment_ignore: int | None = Field(None, ge=0, le=255)
    cache: bool = True
    download: bool = Field(False, description="not offered: Taskonomy needs its tools and terms")


def _require(path: Path) -> None:
    if not path.is_file():
        raise ScalarizeError(f"{path} is missing; every rgb view needs a file for each chosen "
                             f"task (download the task for this building from {WHERE})")


def _open(path: Path) -> Image.Image:
    _require(path)
    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError) as exc:
        raise ScalarizeError(f"{path} is corrupt or truncated ({exc}); download it again"
                             ) from None


def _square(array: np.ndarray) -> np.ndarray:
    h, w = array.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return array[top:top + side, left:left + side]


def _area_resize(values: np.ndarray, size: int) -> np.ndarray:
    """Area (box) resize of a float32 H×W array with Pillow's ``F`` mode."""
    image = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def decode_gray16(path: Path, size: int, invalid: int | None = None) -> np.ndarray:
    """A 16-bit single-channel PNG as 1×size×size uint16, area-resized over its valid pixels
    (``invalid`` marks missing ones and stays so where less than half the area is valid)."""
    with _open(path) as image:
        if image.mode not in ("I;16", "I;16B", "I", "L"):
            raise ScalarizeError(f"{path}: expected a 16-bit grey PNG, got mode {image.mode}")
        raw = _square(np.asarray(image).astype(np.int64))
    if raw.min() < 0 or raw.max() > 65535:
        raise ScalarizeError(f"{path}: values outside 0..65535")
    valid = np.ones(raw.shape, bool) if invalid is None else raw != invalid
    share = _area_resize(valid.astype(np.float32), size)
    total = _area_resize(np.where(valid, raw, 0).astype(np.float32), size)
    out = np.rint(total / np.maximum(share, 1e-6))
    if invalid is not None:
        out[share < 0.5] = invalid
    return np.clip(out, 0, 65535).astype(np.uint16)[None]


def decode_labels(path: Path, size: int, classes: int, ignore: int | None) -> np.ndarray:
    """An 8-bit class map (grey or palette PNG) as size×size uint8, nearest-neighbour resized;
    a value outside ``0..classes-1`` (other than ``ignore``) is an error."""
    with _open(path) as image:
        if image.mode not in ("L", "P"):
            raise ScalarizeError(f"{path}: expected an 8-bit class map, got mode {image.mode}")
        labels = _square(np.asarray(image))
    bad = labels >= classes
    if ignore is not None:
        bad &= labels != ignore
    if bad.any():
        raise ScalarizeError(f"{path}: class {int(labels[bad][0])} is out of range "
                             f"0..{classes - 1}; set benchmark.options.segment_classes (or "
                             "segment_ignore)")
    image = Image.fromarray(np.ascontiguousarray(labels), mode="L")
    return np.asarray(image.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)


def decode_rgb(path: Path, size: int) -> np.ndarray:
    """An RGB PNG (inputs, normals) as 3×size×size uint8, area-resized."""
    _require(path)  # the Taskonomy wording of the missing-file error
    return decode_image(path, size)


@dataclass(frozen=True)
class TaskonomyTask:
    """How one Taskonomy folder becomes a task: its kind, the kind's options and the decoder
    of its PNGs (segmentation takes both from the benchmark options)."""

    kind: str
    description: str
    decode: Callable[[Path, int], np.ndarray] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def resolve(self, name: str, opts: TaskonomyOptions
                ) -> tuple[Task, Callable[[Path, int], np.ndarray]]:
        """The task named ``name`` and its decoder, under the benchmark options ``opts``."""
        if self.decode is None:  # segmentation: classes and ignore value are options
            classes, ignore = opts.segment_classes, opts.segment_ignore
            return (Task(name, classes, self.description, self.kind, {"ignore": ignore}),
                    partial(decode_labels, classes=classes, ignore=ignore))
        return Task(name, 0, self.description, self.kind, self.options), self.decode


TASKS = {
    "depth_zbuffer": TaskonomyTask("depth", "z-buffer depth in metres",
                                   partial(decode_gray16, invalid=NO_DEPTH),
                                   {"scale": 1 / 512, "invalid": NO_DEPTH}),
    "normal": TaskonomyTask("normals", "surface normals", decode_rgb),
    "edge_texture": TaskonomyTask("regression", "2D texture edges", decode_gray16,
                                  {"scale": 1e-3, "tolerance": 0.1}),
    "segment_semantic": TaskonomyTask("segmentation", "semantic class per pixel"),
    "edge_occlusion": TaskonomyTask("regression", "3D occlusion edges", decode_gray16,
                                    {"scale": 4e-3, "tolerance": 0.1}),
}
DEFAULT_TASKS = ["depth_zbuffer", "normal", "edge_texture", "segment_semantic"]


def read_split_file(path: Path) -> dict[str, list[str]]:
    """Buildings per split from Taskonomy's ``train_val_test_<size>.csv``."""
    if not path.is_file():
        raise ScalarizeError(f"{path} is missing; Taskonomy's split files are at {WHERE}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    need = {"id", *SPLITS}
    if not rows or not need <= set(rows[0]):
        raise ScalarizeError(f"{path} needs the columns id,train,val,test (one row per "
                             "building, 1 marking its split)")
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for number, row in enumerate(rows, start=2):
        marked = [s for s in SPLITS if (row[s] or "").strip() == "1"]
        if len(marked) > 1:
            raise ScalarizeError(f"{path}, line {number}: building {row['id']} is in "
                                 f"{' and '.join(marked)}; a building belongs to one split")
        for split in marked:
            out[split].append(row["id"].strip())
    return out


def _layout(root: Path, task: str, building: str) -> Path:
    folder = root / task / building
    nested = root / task / "taskonomy" / building  # omnidata-tools' layout
    return nested if not folder.is_dir() and nested.is_dir() else folder


def building_views(root: Path, building: str, limit: int | None) -> list[str]:
    """The sorted view names (``point_<p>_view_<v>``) of ``building``'s rgb folder."""
    folder = _layout(root, "rgb", building)
    if not folder.is_dir():
        raise ScalarizeError(f"{folder} is missing; download building {building!r} (task rgb) "
                             f"from {WHERE}")
    views = sorted(p.name.removesuffix("_domain_rgb.png")
                   for p in folder.glob("*_domain_rgb.png"))
    if not views:
        raise ScalarizeError(f"{folder} holds no *_domain_rgb.png images")
    return views[:limit]


def _buildings(opts: TaskonomyOptions) -> dict[str, list[str]]:
    if (opts.buildings is None) == (opts.split_file is None):
        raise ScalarizeError("give the Taskonomy splits as benchmark.options.buildings "
                             "{train: [...], val: [...], test: [...]} or as split_file, one of "
                             "the two")
    if opts.buildings is not None:
        buildings = opts.buildings
        unknown = sorted(set(buildings) - set(SPLITS))
        if unknown:
            raise ScalarizeError(f"benchmark.options.buildings has unknown split(s) {unknown}; "
                                 "use train, val and test")
    else:
        assert opts.split_file is not None
        path = opts.split_file if opts.split_file.is_absolute() else opts.root / opts.split_file
        buildings = read_split_file(path)
    empty = [s for s in SPLITS if not buildings.get(s)]
    if empty:
        raise ScalarizeError(f"no building in split(s) {empty}; every split needs one")
    return buildings


def load_taskonomy(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
                   **options: object) -> Dataset:
    """Taskonomy from ``root`` (see the module docstring); ``seed`` is unused (the splits are
    buildings)."""
    opts = TaskonomyOptions.model_validate(options)
    if opts.download:
        raise ScalarizeError(f"Taskonomy cannot be downloaded for you: fetch the rgb and task "
                             f"folders of your buildings from {WHERE} and put them under "
                             f"{opts.root} as <task>/<building>/")
    resolved = {name: spec.resolve(name, opts) for name, spec in TASKS.items()}
    chosen = select_tasks(tuple(task for task, _ in resolved.values()),
                          DEFAULT_TASKS if tasks is None else tasks)
    size, suffix = opts.image_size, f"-{opts.max_per_building}" if opts.max_per_building else ""
    splits = {}
    for split, names in _buildings(opts).items():
        images: list[np.ndarray] = []
        labels: dict[str, list[np.ndarray]] = {t.name: [] for t in chosen}
        for building in names:
            views = building_views(opts.root, building, opts.max_per_building)
            for domain, decode in [("rgb", decode_rgb),
                                   *[(t.name, resolved[t.name][1]) for t in chosen]]:
                folder = _layout(opts.root, domain, building)
                paths = [folder / f"{v}_domain_{domain}.png" for v in views]
                array = decoded_images(opts.root, paths, size,
                                       f"taskonomy-{building}-{domain}-{size}{suffix}",
                                       listing_checksum(paths), opts.cache, decode)
                (images if domain == "rgb" else labels[domain]).append(array)
        splits[split] = Split(x=np.concatenate(images),
                              labels={k: np.concatenate(v) for k, v in labels.items()})
    return Dataset("taskonomy", view, chosen, splits,
                   info={"image_size": size, "kinds": {t.name: t.kind for t in chosen}})
