"""``celeba``: 40 binary face attributes, read from the official files.

Put under ``root`` what the CelebA site ships::

    root/img_align_celeba/000001.jpg …       (aligned and cropped JPEGs, 178×218)
    root/list_attr_celeba.txt                 (count, 40 names, one row of ±1 per image)
    root/list_eval_partition.txt              (image name, 0 = train / 1 = val / 2 = test)

(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; the data set cannot be downloaded without
accepting its terms, so there is no ``--download``.) Each attribute is one binary task of the
multi-task view; pick a subset with ``benchmark.tasks`` or a named ``group``. Images are
centre-cropped to a square and resized to ``image_size`` (default 64) by Pillow's area filter,
once: the decoded array is kept in ``root/.scalarize/`` (an ``.npy`` plus the checksums of the
list files it came from) and memory-mapped on later loads.

Example:
    >>> import tempfile
    >>> from scalarize.benchmarks.fixtures import write_fixture
    >>> root = write_fixture("celeba", tempfile.mkdtemp())["root"]  # the official files
    >>> len(load_celeba(root=root, group="hair", image_size=16).tasks) > 0
    True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scalarize.benchmarks.base import SPLITS, Dataset, Split, Task, View, select_tasks
from scalarize.benchmarks.images import decoded_images, file_checksum
from scalarize.errors import ScalarizeError

ATTR_FILE, PARTITION_FILE, IMAGE_DIR = ("list_attr_celeba.txt", "list_eval_partition.txt",
                                        "img_align_celeba")
ATTRIBUTES = (  # the 40 columns of list_attr_celeba.txt, in order
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
GROUPS = {
    "hair": ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
             "Receding_Hairline", "Straight_Hair", "Wavy_Hair"],
    "accessories": ["Eyeglasses", "Heavy_Makeup", "Wearing_Earrings", "Wearing_Hat",
                    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie"],
    "face": ["Attractive", "Chubby", "Double_Chin", "High_Cheekbones", "Oval_Face",
             "Pale_Skin", "Rosy_Cheeks", "Young", "Male", "Smiling"],
}


class CelebAOptions(BaseModel):
    """Options of the ``celeba`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    image_size: int = Field(64, ge=8, le=178)
    group: str | None = Field(None, description=f"one of {sorted(GROUPS)} (or benchmark.tasks)")
    cache: bool = True
    download: bool = Field(False, description="not offered: CelebA needs its terms accepted")


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ScalarizeError(f"{path} is missing; CelebA's files come from "
                             "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (unpack them "
                             "into benchmark.options.root)")
    return path.read_text().splitlines()


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Image names, attribute names and labels (N×40, 0/1) of ``list_attr_celeba.txt``."""
    lines = _read_lines(path)
    if len(lines) < 2:
        raise ScalarizeError(f"{path} is truncated: it needs a count line and a header")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ScalarizeError(f"{path}: first line {lines[0]!r} is not the image count") from None
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise ScalarizeError(f"{path} announces {count} images but lists {len(rows)}; "
                             "it is truncated")
    images, values = [], []
    for number, row in enumerate(rows, start=3):
        if len(row) != len(names) + 1:
            raise ScalarizeError(f"{path}, line {number}: {len(row) - 1} values for "
                                 f"{len(names)} attributes")
        images.append(row[0])
        values.append(row[1:])
    try:
        raw = np.array(values, dtype=np.int64)
    except ValueError:
        raise ScalarizeError(f"{path}: a value is not an integer") from None
    if not np.isin(raw, (-1, 1)).all():
        bad = int(raw[~np.isin(raw, (-1, 1))][0])
        raise ScalarizeError(f"{path}: attribute value {bad} is not -1 or 1")
    return images, names, (raw > 0).astype(np.int64)


def read_partition(path: Path, images: list[str]) -> np.ndarray:
    """0/1/2 (train/val/test) per image, in the order of ``images``."""
    table = {}
    for number, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ScalarizeError(f"{path}, line {number}: expected '<image> 0|1|2', "
                                 f"got {line!r}")
        table[parts[0]] = int(parts[1])
    missing = [name for name in images if name not in table]
    if missing:
        raise ScalarizeError(f"{path} has no partition for {len(missing)} image(s), e.g. "
                             f"{missing[0]}; use the list files of one CelebA release")
    return np.array([table[name] for name in images], dtype=np.int64)


def load_celeba(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
                **options: object) -> Dataset:
    """CelebA from ``root`` (see the module docstring)."""
    opts = CelebAOptions.model_validate(options)
    if opts.download:
        raise ScalarizeError("CelebA cannot be downloaded for you (its terms must be accepted): "
                             "get img_align_celeba.zip, list_attr_celeba.txt and "
                             "list_eval_partition.txt from "
                             "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and unpack them "
                             f"into {opts.root}")
    if opts.group is not None and opts.group not in GROUPS:
        raise ScalarizeError(f"unknown CelebA group {opts.group!r}; choose one of: "
                             f"{', '.join(sorted(GROUPS))}")
    if opts.group is not None and tasks is not None:
        raise ScalarizeError("give either benchmark.tasks or benchmark.options.group, not both")
    images, names, labels = read_attributes(opts.root / ATTR_FILE)
    partition = read_partition(opts.root / PARTITION_FILE, images)
    all_tasks = tuple(Task(n, 2, f"CelebA attribute {n}") for n in names)
    chosen = select_tasks(all_tasks, GROUPS[opts.group] if opts.group else tasks)
    x = decoded_images(opts.root, [opts.root / IMAGE_DIR / n for n in images],
                       opts.image_size, f"celeba-{opts.image_size}",
                       file_checksum([opts.root / ATTR_FILE, opts.root / PARTITION_FILE]),
                       opts.cache)
    column = {n: i for i, n in enumerate(names)}
    splits = {}
    for code, split in enumerate(SPLITS):
        index = np.flatnonzero(partition == code)
        splits[split] = Split(x=np.asarray(x[index]),
                              labels={t.name: labels[index, column[t.name]] for t in chosen})
    return Dataset("celeba", view, chosen, splits, info={"image_size": opts.image_size})
