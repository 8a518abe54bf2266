"""``cifar10_stl10``: the paper's two-domain benchmark, read from the official on-disk formats.

Put both data sets under one ``root``::

    root/cifar-10-batches-py/   data_batch_1 … data_batch_5, test_batch   (python pickles)
    root/stl10_binary/          train_X.bin, train_y.bin, test_X.bin, test_y.bin

from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and
https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz (unpacked as they come), or let
``download: true`` fetch them (resumable, MD5-checked; see :mod:`scalarize.benchmarks.download`).

The multi-domain view has two domains, ``cifar10`` and ``stl10``, and one task, ``label``. By
default each domain keeps its own ten classes (train with per-domain heads, the paper's
setting); ``shared_classes: true`` keeps the nine classes both share (CIFAR's frog and STL's
monkey dropped, ``automobile`` = ``car``) under one label space, for ``model.shared_head: true``.
STL-10's 96×96 images are resized to ``image_size`` (default 32, CIFAR's resolution) by area
averaging. A seeded ``val_fraction`` of each domain's training images is the validation split.

Example:
    >>> import tempfile
    >>> from scalarize.benchmarks.fixtures import write_fixture
    >>> options = write_fixture("cifar10_stl10", tempfile.mkdtemp())  # the official formats
    >>> load_cifar_stl(**options).domains
    ('cifar10', 'stl10')
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from scalarize.benchmarks.base import (
    Dataset,
    Task,
    View,
    domain_split,
    seeded_split,
    select_tasks,
)
from scalarize.benchmarks.download import Archive, fetch
from scalarize.errors import ScalarizeError

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")
STL_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
               "truck")
SHARED_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "horse", "ship",
                  "truck")
_STL_TO_CIFAR_NAME = {"car": "automobile"}
CIFAR_DIR, STL_DIR = "cifar-10-batches-py", "stl10_binary"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
STL_URL = "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
CIFAR_BYTES, STL_SIDE = 3 * 32 * 32, 96
# the MD5 sums the data sets publish for their archives
ARCHIVES = (Archive(CIFAR_URL, "c58f30108f718f92721af3b95e74349a", CIFAR_DIR),
            Archive(STL_URL, "91f7769df0f17e558f3565bffb0c7dfb", STL_DIR))


class CifarStlOptions(BaseModel):
    """Options of the ``cifar10_stl10`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    image_size: int = Field(32, ge=8, le=96)
    shared_classes: bool = False
    val_fraction: float = Field(0.1, ge=0, lt=1)
    download: bool = Field(False, description="fetch missing archives from the official URLs")


def _missing(path: Path, url: str) -> ScalarizeError:
    return ScalarizeError(f"{path} is missing; download {url}, unpack it into "
                          f"{path.parent.parent} and point benchmark.options.root there")


# numpy's own unpickling constructor (``numpy.core.multiarray._reconstruct`` in numpy 1,
# ``numpy._core.multiarray._reconstruct`` in numpy 2), taken from an array's pickle recipe
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
                  ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
                  ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`CifarUnpickler` does not allow."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 python batch and nothing else.

    ``pickle.load`` calls whatever function a file names, so a crafted batch could run any code.
    No library fits to read these files safely: ``numpy.load(allow_pickle=False)`` does not
    read pickles, torch's weights-only unpickler refuses numpy arrays, and torchvision calls
    ``pickle.load`` itself. So this unpickler resolves only the globals the official
    ``cifar-10-batches-py`` files name (they are python-2 pickles of a dict of byte strings,
    a list of ints and one uint8 array, which needs numpy's ``_reconstruct``, ``ndarray``
    and ``dtype``) and raises :class:`RefusedGlobal` for any other, before it is imported.
    """

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, encoding="bytes")  # python 2's str as bytes: keys b"data", ...

    def find_class(self, module: str, name: str) -> object:
        try:
            return _CIFAR_GLOBALS[module, name]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not part of a CIFAR-10 batch")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N×3×32×32 uint8) and labels (int64) of one CIFAR-10 python batch file, read
    through :class:`CifarUnpickler` (a file that names any other global is refused unrun)."""
    if not path.is_file():
        raise _missing(path, CIFAR_URL)
    try:
        with open(path, "rb") as handle:
            batch = CifarUnpickler(handle).load()
        data, labels = batch[b"data"], batch[b"labels"]
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
    except RefusedGlobal as exc:
        raise ScalarizeError(f"{path} asks for {exc.name}, which no CIFAR-10 python batch "
                             "holds: it could run code, so it was refused unread; delete it "
                             f"and download the batch again from {CIFAR_URL}") from None
    except Exception as exc:
        raise ScalarizeError(f"{path} is truncated or not a CIFAR-10 python batch "
                             f"({type(exc).__name__}); download it again") from None
    if data.ndim != 2 or data.shape[1] != CIFAR_BYTES:
        raise ScalarizeError(f"{path}: images have shape {data.shape}, expected N×3072; "
                             "download it again")
    if labels.ndim != 1 or len(labels) != len(data):
        raise ScalarizeError(f"{path}: {len(data)} images but {labels.size} labels; download "
                             "it again")
    _check_labels(labels, 10, path)
    return data.reshape(-1, 3, 32, 32), labels


def read_stl(x_path: Path, y_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N×3×96×96 uint8) and labels 0..9 (the files store 1..10) of an STL-10 split."""
    for path in (x_path, y_path):
        if not path.is_file():
            raise _missing(path, STL_URL)
    per_image = 3 * STL_SIDE * STL_SIDE
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size == 0 or raw.size % per_image:
        raise ScalarizeError(f"{x_path} has {raw.size} bytes, not a multiple of {per_image} "
                             "(3×96×96): it is truncated; download it again")
    # the files store each image column-major: channel, then column, then row
    x = raw.reshape(-1, 3, STL_SIDE, STL_SIDE).transpose(0, 1, 3, 2)
    labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(x):
        raise ScalarizeError(f"{y_path} has {len(labels)} labels for {len(x)} images in "
                             f"{x_path.name}; one of them is truncated")
    _check_labels(labels, 10, y_path, offset=1)
    return np.ascontiguousarray(x), labels


def _check_labels(labels: np.ndarray, n_classes: int, path: Path, offset: int = 0) -> None:
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        value = int(labels[bad][0]) + offset
        raise ScalarizeError(f"{path}: label {value} is out of range "
                             f"{offset}..{n_classes - 1 + offset}; the file is corrupt")


def resize_area(x: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """Resize N×C×H×W uint8 images to ``size``×``size`` by area averaging (exact mean pooling
    when ``size`` divides the side), rounded back to uint8."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = np.empty((*x.shape[:2], size, size), dtype=np.uint8)
    for start in range(0, len(x), chunk):
        part = torch.from_numpy(x[start:start + chunk]).float()
        small = F.adaptive_avg_pool2d(part, size)
        out[start:start + chunk] = small.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _shared_map(classes: tuple[str, ...]) -> np.ndarray:
    """Old label → index in SHARED_CLASSES, or −1 for a class the other domain lacks."""
    names = [_STL_TO_CIFAR_NAME.get(c, c) for c in classes]
    return np.array([SHARED_CLASSES.index(n) if n in SHARED_CLASSES else -1 for n in names])


def load_cifar_stl(view: View = "mdl", tasks: list[str] | None = None, seed: int = 0,
                   **options: object) -> Dataset:
    """CIFAR-10 + STL-10 from ``root`` (see the module docstring)."""
    opts = CifarStlOptions.model_validate(options)
    root = opts.root
    if opts.download:
        root.mkdir(parents=True, exist_ok=True)
        for archive in ARCHIVES:
            fetch(archive, root)
    if not root.is_dir():
        raise ScalarizeError(f"benchmark.options.root={root} is not a folder; it must hold "
                             f"{CIFAR_DIR}/ ({CIFAR_URL}) and {STL_DIR}/ ({STL_URL})")
    cifar_train = [read_cifar_batch(root / CIFAR_DIR / f"data_batch_{i}") for i in range(1, 6)]
    cifar = {"train": (np.concatenate([x for x, _ in cifar_train]),
                       np.concatenate([y for _, y in cifar_train])),
             "test": read_cifar_batch(root / CIFAR_DIR / "test_batch")}
    stl = {split: read_stl(root / STL_DIR / f"{split}_X.bin", root / STL_DIR / f"{split}_y.bin")
           for split in ("train", "test")}
    stl = {k: (resize_area(x, opts.image_size), y) for k, (x, y) in stl.items()}
    if opts.image_size != 32:
        cifar = {k: (resize_area(x, opts.image_size) if opts.image_size < 32
                     else _upsample(x, opts.image_size), y) for k, (x, y) in cifar.items()}
    n_classes = 10
    if opts.shared_classes:
        maps = (_shared_map(CIFAR_CLASSES), _shared_map(STL_CLASSES))
        n_classes = len(SHARED_CLASSES)
        cifar = {k: _keep_shared(x, y, maps[0]) for k, (x, y) in cifar.items()}
        stl = {k: _keep_shared(x, y, maps[1]) for k, (x, y) in stl.items()}
    rng = np.random.default_rng([seed, 1117])
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for domain in (cifar, stl):
        x, y = domain["train"]
        val, train = seeded_split(len(x), opts.val_fraction, rng)
        parts["val"].append((x[val], y[val]))
        parts["train"].append((x[train], y[train]))
        parts["test"].append(domain["test"])
    built = {name: domain_split(group) for name, group in parts.items()}
    chosen = select_tasks((Task("label", n_classes, "object class"),), tasks)
    return Dataset("cifar10_stl10", view, chosen, built, domains=("cifar10", "stl10"),
                   info={"classes": list(SHARED_CLASSES if opts.shared_classes
                                         else CIFAR_CLASSES),
                         "stl_classes": list(STL_CLASSES), "image_size": opts.image_size})


def _upsample(x: np.ndarray, size: int) -> np.ndarray:
    big = F.interpolate(torch.from_numpy(x).float(), size=(size, size), mode="bilinear",
                        align_corners=False)
    return big.round().clamp(0, 255).to(torch.uint8).numpy()


def _keep_shared(x: np.ndarray, y: np.ndarray, mapping: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    new = mapping[y]
    keep = new >= 0
    return x[keep], new[keep]
