"""``npz``: bring your own data as one NumPy ``.npz`` file.

The file holds:

- ``x``: images, N×C×H×W, ``uint8`` (0–255) or floating point in [0, 1];
- one integer label array of length N per task, named ``y_<task>`` (e.g. ``y_digit``);
- optionally ``domain``: an integer domain index per image (names in ``domain_names``, a string
  array, else ``domain0``, ``domain1``, …) for the multi-domain view;
- optionally ``split``: per image 0 = train, 1 = val, 2 = test (or the strings ``train``/``val``/
  ``test``); without it, a seeded 80/10/10 split is drawn.

Example (five lines)::

    import numpy as np
    x = np.random.randint(0, 256, (500, 3, 32, 32), dtype=np.uint8)
    np.savez("mine.npz", x=x, y_digit=np.random.randint(0, 10, 500),
             y_parity=np.random.randint(0, 2, 500))
    # scalarize train configs/npz.yaml benchmark.options.path=mine.npz
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalarize.benchmarks.base import SPLITS, Dataset, Split, Task, View, select_tasks
from scalarize.errors import ScalarizeError

MAX_CLASSES = 2**31  # labels are class indices; more classes than this is a mistake


class NpzOptions(BaseModel):
    """Options of the ``npz`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _room_for_training(self) -> NpzOptions:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave some images to train on")
        return self


def _fail(path: Path, problem: str) -> ScalarizeError:
    return ScalarizeError(f"{path}: {problem} (see the npz format in the README)")


def _to_uint8(x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise _fail(path, f"'x' has dtype {x.dtype}; use uint8 (0-255) or float in [0, 1]")
    if not np.isfinite(x).all():
        raise _fail(path, "'x' holds NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise _fail(path, f"float 'x' spans [{x.min():.3g}, {x.max():.3g}]; scale it to [0, 1]")
    return (x * 255.0 + 0.5).astype(np.uint8)


def _split_codes(raw: np.ndarray | None, n: int, seed: int, opts: NpzOptions) -> np.ndarray:
    if raw is None:
        order = np.random.default_rng(seed).permutation(n)
        codes = np.zeros(n, dtype=np.int64)
        n_val, n_test = round(n * opts.val_fraction), round(n * opts.test_fraction)
        codes[order[:n_val]] = 1
        codes[order[n_val:n_val + n_test]] = 2
        return codes
    if raw.dtype.kind in "US":
        lookup = {name: i for i, name in enumerate(SPLITS)}
        bad = sorted({str(s) for s in raw} - set(lookup))
        if bad:
            raise _fail(opts.path, f"'split' holds unknown names {bad}; use train, val, test")
        return np.array([lookup[str(s)] for s in raw], dtype=np.int64)
    if raw.dtype.kind not in "iu" or (raw.size and (raw.min() < 0 or raw.max() > 2)):
        raise _fail(opts.path, "'split' must hold 0 (train), 1 (val) or 2 (test) per image")
    return raw.astype(np.int64)


def load_npz(view: View = "mtl", tasks: list[str] | None = None, seed: int = 0,
             **options: object) -> Dataset:
    """Read a user's ``.npz`` file into a :class:`Dataset` (format in the module docstring)."""
    opts = NpzOptions(**options)
    path = opts.path
    if not path.is_file():
        raise ScalarizeError(f"{path}: no such file; set benchmark.options.path to your .npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise _fail(path, f"not a readable .npz file ({exc})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise _fail(path, f"member {key!r} is not a NumPy array; save arrays with np.savez")
    if "x" not in arrays:
        raise _fail(path, f"no 'x' array (found {sorted(arrays)})")
    x = arrays["x"]
    if x.ndim != 4:
        raise _fail(path, f"'x' has shape {x.shape}; it must be N×C×H×W")
    n = x.shape[0]
    x = _to_uint8(x, path)
    label_keys = sorted(k for k in arrays if k.startswith("y_"))
    if not label_keys:
        raise _fail(path, "no label arrays; name one per task 'y_<task>'")
    all_tasks, labels = [], {}
    for key in label_keys:
        y = arrays[key]
        name = key.removeprefix("y_")
        if y.shape != (n,):
            raise _fail(path, f"'{key}' has shape {y.shape}; give one label per image ({n})")
        if y.dtype.kind not in "iu":
            raise _fail(path, f"'{key}' has dtype {y.dtype}; labels must be integers")
        if not name:
            raise _fail(path, f"'{key}' names no task; call it 'y_<task>'")
        if n and y.min() < 0:
            raise _fail(path, f"'{key}' holds negative labels; classes must be 0..K-1")
        if n and int(y.max()) >= MAX_CLASSES:
            raise _fail(path, f"'{key}' holds label {int(y.max())}; classes must be 0..K-1 "
                        f"with K below {MAX_CLASSES:,}")
        all_tasks.append(Task(name, int(y.max()) + 1 if n else 1))
        labels[name] = y.astype(np.int64)
    chosen = select_tasks(tuple(all_tasks), tasks)
    domain, domain_names = None, tuple[str, ...]()
    if "domain" in arrays:
        domain = arrays["domain"]
        if domain.shape != (n,) or domain.dtype.kind not in "iu" or (n and domain.min() < 0):
            raise _fail(path, "'domain' must hold one non-negative integer per image")
        domain = domain.astype(np.int64)
        n_domains = int(domain.max()) + 1 if n else 0
        if "domain_names" in arrays:
            domain_names = tuple(str(s) for s in arrays["domain_names"])
            if len(set(domain_names)) != len(domain_names):
                raise _fail(path, f"'domain_names' repeats a name ({list(domain_names)}); give "
                            "each domain its own")
            if len(domain_names) < n_domains:
                raise _fail(path, f"'domain_names' names {len(domain_names)} domains but "
                            f"'domain' uses {n_domains}")
        else:
            domain_names = tuple(f"domain{i}" for i in range(n_domains))
    codes = _split_codes(arrays.get("split"), n, seed, opts)
    if codes.shape != (n,):
        raise _fail(path, f"'split' must have one entry per image ({n})")
    full = Split(x=x, labels={t.name: labels[t.name] for t in chosen}, domain=domain)
    splits = {name: full.subset(np.flatnonzero(codes == i)) for i, name in enumerate(SPLITS)}
    empty = [name for name, s in splits.items() if len(s) == 0]
    if empty:
        raise _fail(path, f"split(s) {empty} are empty; give each split at least one image")
    return Dataset("npz", view, chosen, splits, domains=domain_names, info={"path": str(path)})
