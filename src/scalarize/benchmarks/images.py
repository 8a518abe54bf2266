"""Image folders of the real benchmarks: decode once, cache, memory-map.

Readers of JPEG/PNG data sets (CelebA, DomainNet, Taskonomy) decode every image once (centre
square crop, area resize with Pillow) into one N×C×S×S array kept in
``<root>/.scalarize/<key>.npy``, beside ``<key>.index.txt`` (row i came from line i's file,
relative to ``root``) and ``<key>.json`` (row count, shape, dtype and a checksum of where the
rows came from: the list files' bytes, or the names and sizes of the image files for data sets
without lists); later loads memory-map the array, so training never decodes an image.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_text

CACHE_DIR = ".scalarize"


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image as a C×H×W uint8 array: centre square crop, area resize to ``size``."""
    if not path.is_file():
        raise ScalarizeError(f"image {path} is missing; unpack the data set completely")
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
            w, h = image.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((size, size), Image.Resampling.BOX)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise ScalarizeError(f"image {path} is corrupt or truncated ({exc}); "
                             "unpack it again") from None


def file_checksum(paths: Sequence[Path]) -> str:
    """SHA-256 of the bytes of ``paths`` (list files: small, and they name every image)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def listing_checksum(paths: Sequence[Path]) -> str:
    """SHA-256 of the names and byte sizes of ``paths`` (image folders without list files);
    a missing file counts as size -1, so the decoder reports it."""
    digest = hashlib.sha256()
    for path in paths:
        size = path.stat().st_size if path.is_file() else -1
        digest.update(f"{path.name}\0{size}\n".encode())
    return digest.hexdigest()


def decoded_images(root: Path, images: Sequence[Path], size: int, key: str,
                   checksum: str, cache: bool = True,
                   decode: Callable[[Path, int], np.ndarray] = decode_image) -> np.ndarray:
    """``images`` decoded by ``decode`` (default: N×3×size×size uint8 RGB): from
    ``root/.scalarize/<key>.npy`` when it was built from the same source (``checksum``), else
    decoded with a progress bar and cached."""
    folder = root / CACHE_DIR
    array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if cache and array_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("checksum") == checksum and meta.get("count") == len(images):
            return np.load(array_path, mmap_mode="r")
    out: np.ndarray | None = None
    for i, path in enumerate(tqdm(images, desc=f"decoding {key}", unit="image",
                                  disable=None if len(images) > 1000 else True)):
        image = decode(path, size)
        if out is None:
            out = np.empty((len(images), *image.shape), dtype=image.dtype)
        out[i] = image
    if out is None:
        raise ScalarizeError(f"{key}: no images to decode")
    if cache:
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{key}.tmp.npy"
        np.save(tmp, out)
        tmp.replace(array_path)
        index = folder / f"{key}.index.txt"
        atomic_write_text(index, "".join(f"{_relative(p, root)}\n" for p in images))
        atomic_write_text(meta_path, json.dumps({
            "checksum": checksum, "count": len(images), "shape": list(out.shape[1:]),
            "dtype": str(out.dtype), "index": index.name}))
    return out


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
