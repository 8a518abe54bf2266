"""``shapes``: a procedural image benchmark that runs anywhere, offline, in seconds.

Each image holds one to three copies of a shape in distinct cells of a 3×3 grid. Five latent
factors give the multi-task (MTL) view its tasks, of different difficulty and relatedness:

========== ======= ===========================================================
task       classes what it asks
========== ======= ===========================================================
shape      4       circle, square, triangle or cross (hard at small sizes)
colour     6       hue of the shapes (easy, but photo noise and shading)
size       3       size bin of the shapes (related to shape and count)
count      3       how many shapes (1–3)
balance    3       more shapes in the left column, as many, or more in the right column
                   (needs location, where the other tasks want translation invariance)
========== ======= ===========================================================

The multi-domain (MDL) view draws the same scenes in four visually distinct styles (``flat``,
``textured``, ``sketch``, ``photo``) sharing one label space, ``label`` = shape × count
(12 classes), with per-domain training sizes that can be imbalanced, as DomainNet's are.

Where sharing helps. With every task labelled on every image, a single-task model of the same
capacity usually wins on ``shapes`` (docs/findings.md). Two options make regimes where sharing
can pay, without changing a pixel (the cached images serve as they are):

- ``label`` (MDL view): the one task of the domains, ``shape_count`` (12 classes) by default, or
  one factor (``shape``, ``count``...). A small domain borrows from a large one:
  ``configs/shapes_sharing.yaml`` draws 60 ``photo`` images with 600 ``flat`` ones at 24 pixels,
  both asking the shape; with the flat domain weighted 0.75, Δ against the single-domain models
  goes from −4.2% at resnet8 ×0.125 to +6.2% at ×0.25 and +11.9% at ×1.0 (one seed, 12
  epochs): the capacity effect crosses zero. The photo model alone stays near chance; with
  flat it gains, and only a large enough model keeps flat as good as alone.
- ``labels_per_task`` (MTL view): few labels per task, on different images. Each task keeps the
  labels of that many training images, its own seeded subset; the others read ``-1`` (no
  label, no gradient for that task), so a multi-task model learns the shared encoder from every
  task's labels while a single-task model sees only its own few. The tasks share latent
  factors (``count`` and ``balance`` both need the occupied grid cells). The effect is weaker
  here: ``count`` + ``balance``, flat style, 400 images with 60 labels each, 25 epochs: Δ −1.9%
  at ×0.25 and +2.3% at ×1.0 (one seed).

Many objectives (``configs/many/``):

- ``attributes: true`` (MTL view): instead of the five factors, the 40 binary attributes of
  :mod:`scalarize.benchmarks.shapes_attributes`, CelebA-like (base rates 1.4% to 56%, some
  with heavy label noise, some near-duplicates), eight of them *pure noise* (labels independent
  of the image, so their best weight is known: zero). ``Dataset.info["pure_noise"]`` names
  those chosen.
- twelve styles for the MDL view: the four above and eight harder variants of them (``dark``,
  ``grainy``, ``faint``, ``inverted``, ``blurred``, ``mono``, ``pixelated``, ``speckled``), so
  that ten or more domains of different difficulty and sizes spread over 30× (``n_train`` per
  domain) play DomainNet's part.

Images are rendered vectorised in NumPy, are bit-for-bit reproducible from the seed (each split
and domain has its own random stream, so growing the training set leaves val/test unchanged), and
are cached on disk (``$SCALARIZE_CACHE``, default ``~/.cache/scalarize``) after the first use.

Example:
    >>> data = load_shapes(view="mtl", n_train=64, n_val=16, n_test=16, cache=False)
    >>> data.splits["train"].x.shape
    (64, 3, 32, 32)
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scalarize.benchmarks.base import SPLITS, Dataset, Split, Task, View, select_tasks
from scalarize.benchmarks.shapes_attributes import ATTRIBUTE_TASKS, PURE_NOISE, attribute_labels
from scalarize.errors import ScalarizeError
from scalarize.files import cache_dir

VERSION = 3  # bump whenever rendering changes: it keys the on-disk cache
SHAPES = ("circle", "square", "triangle", "cross")
HUES = np.array(
    [[0.9, 0.15, 0.15], [0.15, 0.8, 0.2], [0.2, 0.3, 0.95],
     [0.95, 0.85, 0.1], [0.85, 0.2, 0.85], [0.1, 0.85, 0.9]],
    dtype=np.float32,
)
SIZE_FRACTIONS = (0.22, 0.30, 0.38)  # of a grid cell; shapes never touch
MAX_COUNT = 3
BASE_DOMAINS = ("flat", "textured", "sketch", "photo")
#: Every drawing style: the four base ones, then eight variants of them for many-domain
#: regimes (appended, so the base styles keep their random streams and cached images).
DOMAINS = (*BASE_DOMAINS, "dark", "grainy", "faint", "inverted", "blurred", "mono",
           "pixelated", "speckled")
MTL_TASKS = (
    Task("shape", len(SHAPES), "circle, square, triangle or cross"),
    Task("colour", len(HUES), "hue of the shapes"),
    Task("size", len(SIZE_FRACTIONS), "size bin of the shapes"),
    Task("count", MAX_COUNT, "number of shapes minus one"),
    Task("balance", 3, "left column holds more shapes / as many / right column more"),
)
FACTORS = (*(t.name for t in MTL_TASKS), "cells")  # what render returns per image
MDL_TASK = Task("label", len(SHAPES) * MAX_COUNT, "shape × count")
MDL_LABELS = ("shape_count", *(t.name for t in MTL_TASKS))
_CHUNK = 1024
FEW_LABELS_STREAM = 7  # the random stream of labels_per_task, apart from the splits' (0–2)


MAX_IMAGES = 1_000_000


class ShapesOptions(BaseModel):
    """Options of the ``shapes`` benchmark (``benchmark.options`` in a config)."""

    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(32, ge=12, le=256)
    n_train: int | list[int] = Field(
        4000, description="training images (MTL), or per domain (MDL): one int or one per domain"
    )
    n_val: int = Field(1000, ge=1, le=MAX_IMAGES)
    n_test: int = Field(1000, ge=1, le=MAX_IMAGES)
    domains: list[str] = Field(default_factory=lambda: list(BASE_DOMAINS))
    style: str = Field("photo", description="drawing style of the MTL view")
    labels_per_task: int | None = Field(
        None, ge=1, le=MAX_IMAGES, description="MTL view: each task keeps the labels of this "
        "many training images (its own seeded subset; the others read -1, no label)")
    attributes: bool = Field(False, description="MTL view: the 40 binary attributes of "
                             "scalarize.benchmarks.shapes_attributes (CelebA-like, eight of "
                             "them pure noise) instead of the five factors")
    label: str = Field("shape_count", description="what the MDL view's one task asks: "
                       "shape_count (12 classes), or one factor: shape, colour, size, count, "
                       "balance")
    cache: bool = True

    @field_validator("n_train")
    @classmethod
    def _sizes_in_range(cls, value: int | list[int]) -> int | list[int]:
        sizes = value if isinstance(value, list) else [value]
        bad = [n for n in sizes if not 1 <= n <= MAX_IMAGES]
        if bad or not sizes:
            raise ValueError(f"sizes must be 1 to {MAX_IMAGES:,} images, got {value}")
        return value

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in DOMAINS]
        if unknown or not value:
            raise ValueError(f"unknown domain(s) {unknown}; choose from {list(DOMAINS)}")
        return value

    @field_validator("label")
    @classmethod
    def _known_label(cls, value: str) -> str:
        if value not in MDL_LABELS:
            raise ValueError(f"unknown label {value!r}; choose from {list(MDL_LABELS)}")
        return value

    @field_validator("style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        if value not in DOMAINS:
            raise ValueError(f"unknown style {value!r}; choose from {list(DOMAINS)}")
        return value


def render(n: int, seed: int | list[int], image_size: int = 32, style: str = "photo"
           ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``n`` images in ``style``; returns ``x`` (n×3×H×W uint8) and the latent factors."""
    if style not in DOMAINS:
        raise ScalarizeError(f"unknown shapes style {style!r}; choose from {list(DOMAINS)}")
    rng = np.random.default_rng(seed)
    xs, factors = [], []
    for start in range(0, n, _CHUNK):
        x, f = _render_chunk(min(_CHUNK, n - start), rng, image_size, style)
        xs.append(x)
        factors.append(f)
    if not xs:
        return np.zeros((0, 3, image_size, image_size), np.uint8), {
            name: np.zeros(0, np.int64) for name in FACTORS
        }
    merged = {k: np.concatenate([f[k] for f in factors]) for k in factors[0]}
    return np.concatenate(xs), merged


def _render_chunk(n: int, rng: np.random.Generator, size: int, style: str
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    shape = rng.integers(0, len(SHAPES), n)
    colour = rng.integers(0, len(HUES), n)
    size_bin = rng.integers(0, len(SIZE_FRACTIONS), n)
    count = rng.integers(1, MAX_COUNT + 1, n)
    cells = np.argsort(rng.random((n, 9)), axis=1)[:, :MAX_COUNT]  # distinct grid cells
    active = np.arange(MAX_COUNT)[None, :] < count[:, None]
    cols = cells % 3
    balance = np.sign(((cols == 2) & active).sum(1) - ((cols == 0) & active).sum(1)) + 1

    cell = size / 3.0
    radius = (np.asarray(SIZE_FRACTIONS, np.float32)[size_bin]
              * cell * rng.uniform(0.95, 1.05, n)).astype(np.float32)
    jitter = rng.uniform(-0.04, 0.04, (n, MAX_COUNT, 2)) * cell
    cy = (cells // 3 + 0.5) * cell + jitter[..., 0]
    cx = (cells % 3 + 0.5) * cell + jitter[..., 1]

    coords = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = coords[None, :, None], coords[None, None, :]
    mask = np.zeros((n, size, size), dtype=bool)
    r = radius[:, None, None]
    for slot in range(MAX_COUNT):
        dy = yy - cy[:, slot, None, None].astype(np.float32)
        dx = xx - cx[:, slot, None, None].astype(np.float32)
        ady, adx = np.abs(dy), np.abs(dx)
        kinds = (
            dx * dx + dy * dy <= r * r,
            np.maximum(adx, ady) <= 0.85 * r,
            (dy <= 0.8 * r) & (adx <= (dy + r) / 1.8),
            ((adx <= r / 3) & (ady <= r)) | ((ady <= r / 3) & (adx <= r)),
        )
        slot_mask = np.zeros_like(mask)
        for k, kind_mask in enumerate(kinds):
            slot_mask |= kind_mask & (shape == k)[:, None, None]
        mask |= slot_mask & active[:, slot, None, None]

    tone = HUES[colour] * rng.uniform(0.8, 1.0, (n, 1)).astype(np.float32)  # n×3
    img = _STYLES[style](mask, tone, rng, yy, xx)
    img *= 255.0
    img += 0.5
    x = np.clip(img, 0.0, 255.0, out=img).astype(np.uint8)
    occupied = np.where(active, 1 << cells, 0).sum(1)  # bit 3·row + column per occupied cell
    factors = {"shape": shape, "colour": colour, "size": size_bin, "count": count - 1,
               "balance": balance, "cells": occupied}
    return x, {k: v.astype(np.int64) for k, v in factors.items()}


def _paint(mask: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Compose n×3×H×W images: ``fg`` where ``mask``, else ``bg`` (both broadcastable)."""
    return np.where(mask[:, None], fg, bg).astype(np.float32) * np.ones((1, 3, 1, 1), np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian pixel noise drawn from a per-chunk bank of 256 patterns (drawing a fresh normal
    for every pixel costs more than the rest of the rendering put together)."""
    bank = rng.standard_normal((256, *shape[1:]), dtype=np.float32) * scale
    return bank[rng.integers(0, 256, shape[0])]


def _flat(mask, tone, rng, yy, xx):
    n = mask.shape[0]
    bg = rng.uniform(0.05, 0.35, (n, 1, 1, 1)).astype(np.float32)
    return _paint(mask, tone[:, :, None, None], bg)


def _textured(mask, tone, rng, yy, xx):
    n = mask.shape[0]
    theta = rng.uniform(0, np.pi, (n, 1, 1))
    freq = rng.uniform(0.8, 1.6, (n, 1, 1))
    stripes = 0.5 + 0.5 * np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)))
    fg = tone[:, :, None, None] * (0.55 + 0.45 * stripes[:, None])
    checker = ((yy // 4 + xx // 4) % 2).astype(np.float32)[None]
    bg_tone = rng.uniform(0.2, 0.6, (n, 3, 1, 1)).astype(np.float32)
    bg = bg_tone * (0.7 + 0.3 * checker)
    return _paint(mask, fg, bg)


def _sketch(mask, tone, rng, yy, xx):
    inner = mask.copy()
    inner[:, 1:, :] &= mask[:, :-1, :]
    inner[:, :-1, :] &= mask[:, 1:, :]
    inner[:, :, 1:] &= mask[:, :, :-1]
    inner[:, :, :-1] &= mask[:, :, 1:]
    edge = mask & ~inner
    n = mask.shape[0]
    ink = rng.uniform(0.0, 0.3, (n, 1, 1, 1)).astype(np.float32)
    paper = rng.uniform(0.85, 1.0, (n, 1, 1, 1)).astype(np.float32)
    img = _paint(edge, ink, paper)
    return img + _noise(rng, img.shape, 0.03)


def _photo(mask, tone, rng, yy, xx):
    n, h, w = mask.shape
    corners = rng.uniform(0.1, 0.7, (n, 3, 2, 2)).astype(np.float32)
    ty, tx = yy / h, xx / w
    bg = (corners[..., 0, 0, None, None] * (1 - ty) * (1 - tx)
          + corners[..., 0, 1, None, None] * (1 - ty) * tx
          + corners[..., 1, 0, None, None] * ty * (1 - tx)
          + corners[..., 1, 1, None, None] * ty * tx)
    shade = 0.75 + 0.25 * (1 - ty)
    img = _paint(mask, tone[:, :, None, None] * shade[:, None], bg)
    return img + _noise(rng, img.shape, 0.06)


def _dark(mask, tone, rng, yy, xx):
    return _photo(mask, tone, rng, yy, xx) * 0.35  # underexposed: low contrast, dark


def _grainy(mask, tone, rng, yy, xx):
    img = _photo(mask, tone, rng, yy, xx)
    return img + _noise(rng, img.shape, 0.22)  # heavy sensor noise


def _faint(mask, tone, rng, yy, xx):
    return 0.7 + 0.3 * _sketch(mask, tone, rng, yy, xx)  # pale pencil on paper


def _inverted(mask, tone, rng, yy, xx):
    return 1.0 - _flat(mask, tone, rng, yy, xx)  # a negative


def _blurred(mask, tone, rng, yy, xx):
    img = _textured(mask, tone, rng, yy, xx)
    for axis in (2, 3):  # a 5-pixel box blur, separable, edges clamped
        padded = np.concatenate([img.take([0] * 2, axis), img, img.take([-1] * 2, axis)],
                                axis=axis)
        length = img.shape[axis]
        img = sum(padded.take(range(k, k + length), axis) for k in range(5)) / 5.0
    return img


def _mono(mask, tone, rng, yy, xx):
    img = _photo(mask, tone, rng, yy, xx)
    return np.repeat(img.mean(1, keepdims=True), 3, axis=1)  # colour lost


def _pixelated(mask, tone, rng, yy, xx):
    img = _photo(mask, tone, rng, yy, xx)
    n, c, h, w = img.shape
    block = 4
    hb, wb = -(-h // block), -(-w // block)
    padded = np.pad(img, ((0, 0), (0, 0), (0, hb * block - h), (0, wb * block - w)), "edge")
    means = padded.reshape(n, c, hb, block, wb, block).mean((3, 5))
    return np.repeat(np.repeat(means, block, 2), block, 3)[:, :, :h, :w]


def _speckled(mask, tone, rng, yy, xx):
    img = _flat(mask, tone, rng, yy, xx)
    n, _, h, w = img.shape
    salt = rng.random((n, 1, h, w)) < 0.12  # 12% of the pixels black or white
    return np.where(salt, (rng.random((n, 1, h, w)) < 0.5).astype(np.float32), img)


_STYLES = {"flat": _flat, "textured": _textured, "sketch": _sketch, "photo": _photo,
           "dark": _dark, "grainy": _grainy, "faint": _faint, "inverted": _inverted,
           "blurred": _blurred, "mono": _mono, "pixelated": _pixelated, "speckled": _speckled}


def _cached_render(n: int, seed: list[int], image_size: int, style: str, use_cache: bool
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not use_cache:
        return render(n, seed, image_size, style)
    key = json.dumps([VERSION, n, seed, image_size, style])
    path = cache_dir() / "shapes" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        try:
            with np.load(path) as archive:
                return archive["x"], {name: archive[name] for name in FACTORS}
        except (OSError, ValueError, KeyError):
            pass  # a corrupt cache entry is regenerated below
    x, factors = render(n, seed, image_size, style)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, **factors)  # type: ignore[arg-type]  # the stub reads **kwds as flags
    os.replace(tmp, path)
    return x, factors


def few_labels(labels: dict[str, np.ndarray], per_task: int, seed: int
               ) -> dict[str, np.ndarray]:
    """Each task's labels on ``per_task`` images of its own (drawn with its own stream, so a
    task keeps the same images whichever other tasks are chosen); ``-1`` (no label) on the rest.

    Example:
        >>> out = few_labels({"count": np.arange(6) % 3}, 2, seed=0)
        >>> int((out["count"] >= 0).sum())
        2
    """
    names = [t.name for t in (*MTL_TASKS, *ATTRIBUTE_TASKS)]  # factors first: their streams
    out = {}
    for name, values in labels.items():
        rng = np.random.default_rng([seed, FEW_LABELS_STREAM, names.index(name)])
        keep = rng.choice(len(values), min(per_task, len(values)), replace=False)
        masked = np.full_like(values, -1)
        masked[keep] = values[keep]
        out[name] = masked
    return out


def load_shapes(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
                **options: object) -> Dataset:
    """Build the ``shapes`` benchmark in the ``mtl`` or ``mdl`` view (options: ShapesOptions)."""
    opts = ShapesOptions(**options)
    split_sizes = {"val": opts.n_val, "test": opts.n_test}
    if view == "mtl":
        if not isinstance(opts.n_train, int):
            raise ScalarizeError("shapes: n_train must be one number in the mtl view")
        split_sizes["train"] = opts.n_train
        splits = {}
        for split_id, split_name in enumerate(SPLITS):
            x, factors = _cached_render(split_sizes[split_name], [seed, split_id, 0],
                                        opts.image_size, opts.style, opts.cache)
            tasks_labels = (attribute_labels(factors, seed, split_id) if opts.attributes
                            else factors)
            splits[split_name] = Split(x=x, labels=tasks_labels)
        chosen = select_tasks(ATTRIBUTE_TASKS if opts.attributes else MTL_TASKS, tasks)
        for split in splits.values():
            split.labels = {t.name: split.labels[t.name] for t in chosen}
        if opts.labels_per_task is not None:
            splits["train"].labels = few_labels(splits["train"].labels, opts.labels_per_task,
                                                seed)
        info: dict[str, object] = {"style": opts.style}
        if opts.attributes:
            info["pure_noise"] = [t.name for t in chosen if t.name in PURE_NOISE]
        return Dataset("shapes", "mtl", chosen, splits, info=info)

    train_sizes = opts.n_train if isinstance(opts.n_train, list) else [opts.n_train] * len(
        opts.domains)
    if len(train_sizes) != len(opts.domains):
        raise ScalarizeError(
            f"shapes: n_train has {len(train_sizes)} sizes for {len(opts.domains)} domains; "
            "give one size per domain"
        )
    if opts.attributes:
        raise ScalarizeError("shapes: attributes is an option of the mtl view; drop it or set "
                             "benchmark.view=mtl")
    if opts.labels_per_task is not None:
        raise ScalarizeError("shapes: labels_per_task is an option of the mtl view; in the "
                             "mdl view give a small domain a small n_train instead")
    if tasks not in (None, ["label"]):
        raise ScalarizeError("shapes mdl view has one task, 'label'; drop benchmark.tasks")
    splits = {}
    for split_id, split_name in enumerate(SPLITS):
        xs, labels, domains = [], [], []
        for d, style in enumerate(opts.domains):
            n = train_sizes[d] if split_name == "train" else split_sizes[split_name]
            x, f = _cached_render(n, [seed, split_id, 1 + DOMAINS.index(style)],
                                  opts.image_size, style, opts.cache)
            xs.append(x)
            labels.append(f["shape"] * MAX_COUNT + f["count"] if opts.label == "shape_count"
                          else f[opts.label])
            domains.append(np.full(n, d, dtype=np.int64))
        splits[split_name] = Split(
            x=np.concatenate(xs), labels={"label": np.concatenate(labels)},
            domain=np.concatenate(domains),
        )
    task = MDL_TASK if opts.label == "shape_count" else next(
        Task("label", t.num_classes, t.description) for t in MTL_TASKS if t.name == opts.label)
    return Dataset("shapes", "mdl", (task,), splits, domains=tuple(opts.domains))
