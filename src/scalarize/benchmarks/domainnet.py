"""``domainnet``: the six DomainNet domains (345 classes), read from the official files.

Put under ``root`` what the DomainNet site ships (http://ai.bu.edu/M3SDA/)::

    root/<domain>/<class>/<image>.jpg         for each domain you use
    root/<domain>_train.txt, <domain>_test.txt  lines '<domain>/<class>/<image>.jpg <label>'

or let ``download: true`` fetch the chosen domains' zips and lists from the official URLs
(resumable; DomainNet publishes no checksums, so every zip member's CRC-32 is verified before
anything is unpacked, and the lists are checked line by line as they are read).

Multi-domain view: the chosen ``domains`` (any subset of clipart, infograph, painting,
quickdraw, real, sketch; the paper pairs ``real`` with each other one) share one 345-class
``label`` task. Images are centre-cropped and resized to ``image_size`` (default 64) once and
cached in ``root/.scalarize/`` (see :mod:`scalarize.benchmarks.images`). A seeded
``val_fraction`` of each domain's training list validates.

Example:
    >>> import tempfile
    >>> from scalarize.benchmarks.fixtures import write_fixture
    >>> root = write_fixture("domainnet", tempfile.mkdtemp())["root"]  # the official layout
    >>> load_domainnet(root=root, domains=["real", "sketch"], image_size=16).domains
    ('real', 'sketch')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scalarize.benchmarks.base import Dataset, Task, View, domain_split, seeded_split, select_tasks
from scalarize.benchmarks.download import Archive, download, fetch
from scalarize.benchmarks.images import decoded_images, file_checksum
from scalarize.errors import ScalarizeError

DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
N_CLASSES = 345
BASE_URL = "http://csr.bu.edu/ftp/visda/2019/multi-source"
# two domains' cleaned images moved under groundtruth/
ZIP_PATHS = {d: f"groundtruth/{d}.zip" if d in ("clipart", "painting") else f"{d}.zip"
             for d in DOMAINS}


class DomainNetOptions(BaseModel):
    """Options of the ``domainnet`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    root: Path
    domains: list[str] = Field(default_factory=lambda: ["real", "clipart"], min_length=1)
    image_size: int = Field(64, ge=8, le=512)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    cache: bool = True
    download: bool = Field(False, description="fetch the chosen domains from the official URLs")


def fetch_domain(domain: str, root: Path, base_url: str | None = None) -> None:
    """Download and unpack ``domain``'s images and its two split lists into ``root``."""
    base_url = base_url or BASE_URL
    fetch(Archive(f"{base_url}/{ZIP_PATHS[domain]}", None, domain), root)
    for split in ("train", "test"):
        name = f"{domain}_{split}.txt"
        download(f"{base_url}/domainnet/txt/{name}", root / name, None)


def read_list(path: Path) -> tuple[list[str], np.ndarray]:
    """Relative image paths and labels of one ``<domain>_<split>.txt``."""
    if not path.is_file():
        raise ScalarizeError(f"{path} is missing; DomainNet's image archives and split lists "
                             "come from http://ai.bu.edu/M3SDA/ (unpack them into "
                             "benchmark.options.root)")
    names, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            label = int(parts[1]) if len(parts) == 2 else None
        except ValueError:
            label = None
        if label is None:
            raise ScalarizeError(f"{path}, line {number}: expected '<image path> <label>', "
                                 f"got {line!r}")
        if not 0 <= label < N_CLASSES:
            raise ScalarizeError(f"{path}, line {number}: label {label} is out of range "
                                 f"0..{N_CLASSES - 1}")
        names.append(parts[0])
        labels.append(label)
    if not names:
        raise ScalarizeError(f"{path} lists no images")
    return names, np.array(labels, dtype=np.int64)


def load_domainnet(view: View = "mdl", tasks: list[str] | None = None, seed: int = 0,
                   **options: object) -> Dataset:
    """DomainNet from ``root`` (see the module docstring)."""
    opts = DomainNetOptions.model_validate(options)
    unknown = [d for d in opts.domains if d not in DOMAINS]
    if unknown:
        raise ScalarizeError(f"unknown DomainNet domain(s) {unknown}; choose from: "
                             f"{', '.join(DOMAINS)}")
    if opts.download:
        for domain in opts.domains:
            fetch_domain(domain, opts.root)
    rng = np.random.default_rng([seed, 4099])
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for domain in opts.domains:
        for split in ("train", "test"):
            lst = opts.root / f"{domain}_{split}.txt"
            names, labels = read_list(lst)
            key = f"domainnet-{domain}-{split}-{opts.image_size}"
            x = decoded_images(opts.root, [opts.root / n for n in names], opts.image_size, key,
                               file_checksum([lst]), opts.cache)
            if split == "test":
                parts["test"].append((x, labels))
                continue
            val, train = seeded_split(len(names), opts.val_fraction, rng)
            parts["val"].append((x[val], labels[val]))
            parts["train"].append((x[train], labels[train]))
    splits = {name: domain_split(group) for name, group in parts.items()}
    chosen = select_tasks((Task("label", N_CLASSES, "object class"),), tasks)
    return Dataset("domainnet", view, chosen, splits, domains=tuple(opts.domains),
                   info={"image_size": opts.image_size})
