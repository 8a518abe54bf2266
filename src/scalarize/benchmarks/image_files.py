"""``image_files``: a folder of image files with a labels CSV per split, read lazily.

Layout (``benchmark.options.root``)::

    root/train/labels.csv      # columns: file, one column per task, optional domain
    root/train/<file> ...      # any format Pillow reads (PNG, JPEG, ...), one size for all
    root/test/labels.csv
    root/val/labels.csv        # optional: else val_share of train, seeded by the benchmark seed

``file`` is the image's path relative to its split folder. A task column holds integer class
labels (classes 0..K-1, K inferred from every split) unless ``kinds`` declares it ``regression``
(one float per image). An empty cell is a missing label (partial labels: read as ``-1`` for a
class, NaN for a float; ``-1`` and ``nan`` may also be written out). The optional ``domain``
column names each image's domain; the multi-domain view (``view: mdl``) makes each domain
(sorted by name) an objective and needs one classification task. Images are decoded with Pillow
when the trainer asks for them (in ``train.workers`` loader processes), as uint8 C×H×W:
greyscale stays one channel, anything but RGB becomes RGB (or greyscale for 1-bit and 16-bit
images).

Example::

    # scalarize train benchmark.name=image_files "benchmark.options={root: my_images}"
    # "benchmark.options.kinds={age: regression}" for a float column
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset as TorchDataset

from scalarize.benchmarks.base import Dataset, View, seeded_split, select_tasks
from scalarize.benchmarks.stream import StreamSplit
from scalarize.benchmarks.targets import TARGETS, CellError
from scalarize.errors import ScalarizeError

#: The kinds a labels.csv column may hold: those whose target contract reads table cells.
Kind = Literal["classification", "regression"]
#: Pillow modes kept as they are; the rest are converted (see the module doc).
KEPT_MODES = ("L", "RGB")
GREY_MODES = ("1", "LA", "I", "I;16", "I;16B", "I;16L", "F")


class ImageFilesOptions(BaseModel):
    """Options of the ``image_files`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    kinds: dict[str, Kind] = Field(default_factory=dict,
                                   description="task -> classification (default) or regression")
    val_share: float = Field(0.1, ge=0, lt=1)


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as uint8 C×H×W."""
    try:
        with Image.open(path) as opened:
            image: Image.Image = opened
            if image.mode not in KEPT_MODES:
                image = image.convert("L" if image.mode in GREY_MODES else "RGB")
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ScalarizeError(f"{path}: no such image file (listed in its labels.csv)") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ScalarizeError(f"{path}: not a readable image ({exc})") from None
    return np.ascontiguousarray(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))


def _rows(table: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of a labels CSV."""
    try:
        with table.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = [c.strip() for c in reader.fieldnames or []]
    except FileNotFoundError:
        raise ScalarizeError(f"{table}: no such file; each split folder needs a labels.csv "
                             "(columns: file, one per task, optional domain)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScalarizeError(f"{table}: not a readable CSV file ({exc})") from None
    if "file" not in columns:
        raise ScalarizeError(f"{table}: no 'file' column (columns: {columns}); name the image "
                             "files in a column called file")
    rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for row in rows]
    return columns, rows


class ImageFiles(TorchDataset[tuple[np.ndarray, dict[str, Any]]]):
    """The images listed in ``root/split/labels.csv``, read on ``__getitem__`` (see the module
    doc); ``kinds`` declares task columns as ``regression`` (float)."""

    def __init__(self, root: Path | str, split: str, kinds: dict[str, Kind] | None = None
                 ) -> None:
        kinds = kinds or {}
        self.folder = Path(root) / split
        table = self.folder / "labels.csv"
        columns, rows = _rows(table)
        self.files = [self.folder / row["file"] for row in rows]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            raise ScalarizeError(f"{missing[0]}: no such image file (listed in {table}"
                                 f"{f' with {len(missing) - 1} more' if len(missing) > 1 else ''})")
        unknown = sorted(set(kinds) - set(columns))
        if unknown:
            raise ScalarizeError(f"benchmark.options.kinds names {unknown}, which {table} has no "
                                 f"column for (columns: {columns})")
        self.task_names = tuple(c for c in columns if c not in ("file", "domain"))
        if not self.task_names:
            raise ScalarizeError(f"{table}: no task column; add one column per task next to "
                                 "file (and domain)")
        self.labels = {name: self._column(rows, name, kinds.get(name, "classification"), table)
                       for name in self.task_names}
        self.domain_names = [row["domain"] for row in rows] if "domain" in columns else None
        if self.domain_names is not None and not all(self.domain_names):
            row = self.domain_names.index("") + 2
            raise ScalarizeError(f"{table}: row {row} has no domain; name one for every image")
        self.tasks: tuple[str, ...] = self.task_names

    @staticmethod
    def _column(rows: list[dict[str, str]], name: str, kind: Kind, table: Path) -> np.ndarray:
        """Column ``name`` of ``rows``, one target per image as the kind's target contract reads
        a cell (:mod:`scalarize.benchmarks.targets`); an empty cell is a missing label."""
        contract = TARGETS[kind]
        values = np.empty(len(rows), contract.column_dtype)
        for i, row in enumerate(rows):
            text = row.get(name, "")
            if not text.strip():  # a gap: no label for this task (partial labels)
                values[i] = contract.column_missing
                continue
            try:
                values[i] = contract.cell(text, name)
            except CellError as exc:
                raise ScalarizeError(f"{table}: column {name!r} holds {exc.shown} at row "
                                     f"{i + 2}; {exc.advice}") from None
        return values

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        return (read_image(self.files[i]),
                {name: self.labels[name][i] for name in self.tasks})


def load_image_files(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
                     **options: Any) -> Dataset:
    """The ``image_files`` benchmark (layout in the module doc); options ``root``, ``kinds``
    (task -> ``classification`` or ``regression``), ``val_share``."""
    opts = ImageFilesOptions(**options)
    root = opts.root
    if not root.is_dir():
        raise ScalarizeError(f"{root}: no such folder; set benchmark.options.root to a folder "
                             "holding train/ and test/ (each with a labels.csv)")
    has_val = (root / "val" / "labels.csv").is_file()
    parts = {s: ImageFiles(root, s, opts.kinds) for s in ("train", "val", "test")
             if s != "val" or has_val}
    names = parts["train"].task_names
    for part in parts.values():
        if part.task_names != names:
            raise ScalarizeError(f"{part.folder / 'labels.csv'} has task columns "
                                 f"{list(part.task_names)}, train has {list(names)}; give "
                                 "every split the same columns")
    all_tasks = [TARGETS[opts.kinds.get(name, "classification")].task(
        name, [p.labels[name] for p in parts.values()]) for name in names]
    chosen = select_tasks(tuple(all_tasks), tasks)
    for part in parts.values():
        part.tasks = tuple(t.name for t in chosen)
    domains: tuple[str, ...] = ()
    domain: dict[str, np.ndarray | None] = dict.fromkeys(parts)
    if view == "mdl":
        if parts["train"].domain_names is None:
            raise ScalarizeError(f"{root / 'train' / 'labels.csv'}: the multi-domain view needs "
                                 "a domain column (a domain name per image); or use "
                                 "benchmark.view=mtl")
        domains = tuple(sorted(set(parts["train"].domain_names)))
        for split, part in parts.items():
            if part.domain_names is None or not set(part.domain_names) <= set(domains):
                raise ScalarizeError(f"{part.folder / 'labels.csv'}: every image needs a domain "
                                     f"among the training split's {list(domains)}")
            domain[split] = np.array([domains.index(d) for d in part.domain_names], np.int64)
    splits = {s: StreamSplit(p, domain[s]) for s, p in parts.items()}
    how = "from the val folder"
    if not has_val:
        held, kept = seeded_split(len(splits["train"]), opts.val_share, np.random.default_rng(seed))
        splits["val"], splits["train"] = splits["train"].subset(held), splits["train"].subset(kept)
        how = f"val carved from train: {len(held)} images ({opts.val_share:.0%}), seed {seed}"
    empty = [s for s in ("train", "val", "test") if len(splits[s]) == 0]
    if empty:
        raise ScalarizeError(f"{root}: split(s) {empty} have no images; give each some (or "
                             "raise benchmark.options.val_share)")
    shapes = {s: split.image_shape for s, split in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ScalarizeError(f"{root}: images differ in shape between splits ({shapes}); "
                             "give every image one size")
    return Dataset("image_files", view, chosen, splits, domains,
                   info={"root": str(root), "split": how,
                         "kinds": {t.name: t.kind for t in chosen}})


def write_image_files(root: Path | str, n_train: int = 40, n_test: int = 16, n_val: int = 0,
                      size: int = 8, domains: tuple[str, ...] = (), seed: int = 0
                      ) -> dict[str, Any]:
    """A small ``image_files`` fixture (for tests and benchmarks): RGB PNGs of ``size`` pixels
    whose class ``label`` (0-3) sets their colour and whose ``brightness`` (a float, declared a
    regression) their mean; with ``domains``, a domain column cycling through them (a domain
    darkens its images). Returns the benchmark options."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    palette = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [200, 200, 40]])
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n == 0:
            continue
        folder = root / split
        (folder / "images").mkdir(parents=True, exist_ok=True)
        lines = ["file,label,brightness" + (",domain" if domains else "")]
        for i in range(n):
            label = int(rng.integers(0, 4))
            shade = 1.0 - 0.3 * (i % len(domains)) / max(1, len(domains)) if domains else 1.0
            noise = rng.integers(-30, 31, (size, size, 3))
            pixels = np.clip(palette[label] * shade + noise, 0, 255).astype(np.uint8)
            name = f"images/{i:05d}.png"
            Image.fromarray(pixels).save(folder / name)
            row = f"{name},{label},{pixels.mean() / 255:.4f}"
            lines.append(row + (f",{domains[i % len(domains)]}" if domains else ""))
        (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return {"root": str(root), "kinds": {"brightness": "regression"}}


__all__ = ["ImageFiles", "ImageFilesOptions", "load_image_files", "read_image",
           "write_image_files"]
