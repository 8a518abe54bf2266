"""``npz``: bring your own data as one NumPy ``.npz`` file.

The file holds:

- ``x``: images, N×C×H×W, ``uint8`` (0–255) or floating point in [0, 1]; or, for data that
  is not images (:mod:`scalarize.benchmarks.inputs`), N×F float features (tabular), N×L
  integer token ids or N×L×F float sequences. Float features are taken as they are, or
  standardised with the training split's mean and std per feature (option ``standardize:
  true``); token ids go 0..V-1, V being the training split's largest id + 1 or option
  ``vocab_size``. Dense targets (maps) need images;
- one target array per task, N first, named ``y_<task>`` (e.g. ``y_digit``). Its task kind is
  declared by an optional ``kind_<task>`` member (one string: ``classification``,
  ``segmentation``, ``depth``, ``regression`` or ``normals``), else inferred:

  ======================== =================================================================
  ``y_<task>``             inferred kind
  ======================== =================================================================
  integer N                classification (classes 0..K-1)
  float N or N×K           regression, K values per image
  integer N×H×W            segmentation (a class per pixel; H×W those of ``x``)
  float N×H×W or N×1×H×W   depth
  ======================== =================================================================

  Anything else (integer N×K, float N×C×H×W with C > 1, float targets holding only whole
  numbers) is ambiguous and must be declared. ``regression`` also takes N×H×W / N×C×H×W maps
  (C channels per pixel), integer targets and depth integer maps (decoded as value × ``scale``);
  ``normals`` takes N×3×H×W, uint8 (value / 255 × 2 − 1) or float in [−1, 1];
- optionally ``options_<task>``: one string holding a JSON object of the kind's options:
  classification ``classes``; segmentation ``classes``, ``ignore`` (a class value that counts
  for nothing); depth ``scale``, ``invalid`` (a raw value marking a missing pixel); regression
  ``scale``, ``invalid``, ``tolerance`` (what the score counts as right, default 0.1); normals
  ``invalid``. Infinite targets are refused;
- partial labels: an image may lack a task's label, marked in the target itself: ``-1`` for a
  missing class label (classification; a segmentation pixel), NaN for a missing float value
  (regression, depth: a value, or a pixel), or the declared ``ignore``/``invalid`` value of
  integer maps. An image whose every value (pixel) of a task is missing has no label for it:
  it counts for that task's loss and metrics not at all (see
  :mod:`scalarize.training.task_kinds`);
- optionally ``domain``: an integer domain index per image (names in ``domain_names``, one
  string per domain, else ``domain0``, ``domain1``, …); the multi-domain view (``view: mdl``)
  makes each domain an objective and needs one classification task;
- optionally ``split``: per image 0 = train, 1 = val, 2 = test (or the strings ``train``/``val``/
  ``test``); without it, a seeded 80/10/10 split (``val_fraction``, ``test_fraction``) is drawn;
  with train and test but no val, ``val_fraction`` of train is carved out as val (seeded by the
  benchmark seed). ``data info`` says which (``split``).

Example::

    import json
    import numpy as np
    n, rng = 500, np.random.default_rng(0)
    np.savez("mine.npz", x=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
             y_digit=rng.integers(0, 10, n),                      # classification
             y_age=rng.random(n, dtype=np.float32),               # regression
             y_seg=rng.integers(0, 5, (n, 32, 32), dtype=np.uint8),
             options_seg=json.dumps({"classes": 5, "ignore": 255}),
             y_depth=rng.random((n, 32, 32), dtype=np.float32) + 0.5,  # depth, in metres
             kind_depth="depth")                                  # (inferred anyway)
    # scalarize train configs/npz.yaml benchmark.options.path=mine.npz
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalarize.benchmarks.base import (
    SPLITS,
    Dataset,
    Split,
    Task,
    View,
    seeded_split,
    select_tasks,
)
from scalarize.benchmarks.targets import (
    MISSING_LABEL,
    ArrayTarget,
    TargetError,
    array_kinds,
    fit_array,
)
from scalarize.errors import ScalarizeError

KINDS = array_kinds()  # classification, segmentation, depth, regression, normals


class NpzOptions(BaseModel):
    """Options of the ``npz`` benchmark."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    standardize: bool = False  # float features (not images): training mean and std per feature
    vocab_size: int | None = Field(None, ge=1)  # token ids: else the training's largest id + 1

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


def _text(value: np.ndarray, key: str, path: Path) -> str:
    """The one string ``value`` holds (a 0-d or one-element string array)."""
    if value.dtype.kind not in "US" or value.size != 1:
        raise _fail(path, f"'{key}' must hold one string, e.g. np.array('depth') "
                    f"(got dtype {value.dtype}, shape {value.shape})")
    item = value.reshape(()).item()
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def _declared(arrays: dict[str, np.ndarray], name: str, path: Path
              ) -> tuple[str | None, dict[str, Any] | None]:
    """The kind and raw options the file declares for task ``name`` (``None`` when absent)."""
    kind, options = None, None
    key = f"kind_{name}"
    if key in arrays:
        kind = _text(arrays[key], key, path).strip()
        if kind not in KINDS:
            raise _fail(path, f"'{key}' is {kind!r}; use one of {', '.join(KINDS)}")
    key = f"options_{name}"
    if key in arrays:
        text = _text(arrays[key], key, path)
        try:
            options = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(path, f"'{key}' is not valid JSON ({exc.msg} at character {exc.pos})"
                        ) from None
        if not isinstance(options, dict):
            raise _fail(path, f"'{key}' must be a JSON object, e.g. '{{\"ignore\": 255}}'")
    return kind, options


def _infer(y: np.ndarray, name: str, path: Path) -> str:
    """The kind of an undeclared target, from its shape and dtype; ambiguity is refused."""
    key, integer = f"y_{name}", y.dtype.kind in "iu"
    declare = f"declare it with a 'kind_{name}' member"
    if y.ndim == 3 or (y.ndim == 4 and y.shape[1] == 1):
        kind = "segmentation" if integer else "depth"
    elif y.ndim in (1, 2):
        if integer and y.ndim == 2:
            raise _fail(path, f"'{key}' holds integer vectors (shape {y.shape}), which are "
                        f"ambiguous; {declare} (e.g. 'regression')")
        kind = "classification" if integer else "regression"
    else:
        raise _fail(path, f"'{key}' has shape {y.shape}, whose kind cannot be guessed; {declare} "
                    "('regression' for C values per pixel, 'normals' for N×3×H×W normals)")
    known = y[~np.isnan(y)] if not integer else y  # NaN: a missing label
    if not integer and known.size and np.array_equal(known, np.round(known)):
        if y.ndim == 1:  # float N: inferred as a regression
            raise _fail(path, f"'{key}' has dtype {y.dtype} but only whole numbers: class "
                        f"labels must be integers (y.astype(int)); for a regression {declare}")
        raise _fail(path, f"'{key}' has dtype {y.dtype} but only whole numbers: class maps "
                    f"must be integers; for {kind} {declare}")
    return kind


def _target(name: str, y: np.ndarray, kind: str, raw: dict[str, Any] | None,
            image_hw: tuple[int, int], declared: bool, path: Path) -> tuple[Task, np.ndarray]:
    """Task ``name`` of ``kind`` and its targets in a compact dtype, as the kind's target
    contract fits them (:mod:`scalarize.benchmarks.targets`); a target that does not fit the
    kind is refused."""
    try:
        return fit_array(ArrayTarget(name, y, image_hw, declared), kind, raw)
    except TargetError as exc:
        raise _fail(path, str(exc)) from None


def _inputs(x: np.ndarray, path: Path) -> np.ndarray:
    """``x`` as the trainer keeps it: images uint8, features and sequences float32, token ids
    int64; one line for anything else."""
    if x.ndim == 4:
        return _to_uint8(x, path)
    if x.ndim not in (2, 3) or x.dtype.kind not in "iuf" or (x.ndim == 3 and x.dtype.kind != "f"):
        raise _fail(path, f"'x' has shape {x.shape} and dtype {x.dtype}; give N×C×H×W images, "
                    "N×F float features, N×L integer token ids or N×L×F float sequences")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise _fail(path, "'x' holds NaN or infinite values")
        return x.astype(np.float32, copy=False)
    return x.astype(np.int64, copy=False)


def _tasks(arrays: dict[str, np.ndarray], x: np.ndarray, path: Path
           ) -> tuple[list[Task], dict[str, np.ndarray]]:
    """Every task of the file and its targets."""
    n = x.shape[0]
    image_hw = (int(x.shape[2]), int(x.shape[3])) if x.ndim == 4 else (0, 0)
    label_keys = sorted(k for k in arrays if k.startswith("y_"))
    if not label_keys:
        raise _fail(path, "no label arrays; name one per task 'y_<task>'")
    for prefix in ("kind_", "options_"):
        for key in sorted(k for k in arrays if k.startswith(prefix)):
            if f"y_{key.removeprefix(prefix)}" not in arrays:
                raise _fail(path, f"'{key}' describes task {key.removeprefix(prefix)!r} but "
                            f"there is no 'y_{key.removeprefix(prefix)}'")
    all_tasks, labels = [], {}
    for key in label_keys:
        y = arrays[key]
        name = key.removeprefix("y_")
        if y.ndim == 0 or y.shape[0] != n:
            raise _fail(path, f"'{key}' has shape {y.shape}; give one label per image ({n})")
        if x.ndim != 4 and y.ndim > 2:
            raise _fail(path, f"'{key}' holds maps (shape {y.shape}) but 'x' is not images "
                        f"(shape {x.shape}); dense targets need images: give one value or "
                        "vector per example")
        if not name:
            raise _fail(path, f"'{key}' names no task; call it 'y_<task>'")
        if y.dtype.kind == "b":
            y = y.astype(np.uint8)
        if y.dtype.kind not in "iuf":
            raise _fail(path, f"'{key}' has dtype {y.dtype}; targets must be integers or "
                        "floats")
        kind, raw = _declared(arrays, name, path)
        declared = kind is not None
        if kind is None:
            if y.dtype.kind == "f" and np.isinf(y).any():
                raise _fail(path, f"'{key}' holds infinite values; mark a missing value with "
                            "NaN")
            kind = _infer(y, name, path)
        task, target = _target(name, y, kind, raw, image_hw, declared, path)
        missing = np.isnan(target) if target.dtype.kind == "f" else target == MISSING_LABEL
        if target.size and missing.all():
            raise _fail(path, f"'{key}' has no label at all (every value marks a missing "
                        "label); label some images or drop the task")
        all_tasks.append(task)
        labels[name] = target
    return all_tasks, labels


def _domains(arrays: dict[str, np.ndarray], n: int, path: Path
             ) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The domain index per image and the domain names (``None``, ``()`` without domains)."""
    if "domain" not in arrays:
        if "domain_names" in arrays:
            raise _fail(path, "'domain_names' is given but 'domain' is not; add 'domain', the "
                        "domain index of each image")
        return None, ()
    domain = arrays["domain"]
    if domain.shape != (n,) or domain.dtype.kind not in "iu" or (n and domain.min() < 0):
        raise _fail(path, "'domain' must hold one non-negative integer per image")
    domain = domain.astype(np.int64)
    n_domains = int(domain.max()) + 1 if n else 0
    if "domain_names" not in arrays:
        return domain, tuple(f"domain{i}" for i in range(n_domains))
    raw = arrays["domain_names"]
    if raw.ndim != 1 or raw.dtype.kind not in "US":
        raise _fail(path, f"'domain_names' must be a 1-D array of strings, one per domain "
                    f"(got dtype {raw.dtype}, shape {raw.shape})")
    names = tuple(s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)
                  for s in raw.tolist())
    if any(not name.strip() for name in names):
        raise _fail(path, f"'domain_names' holds an empty name ({list(names)}); name every "
                    "domain")
    if len(set(names)) != len(names):
        raise _fail(path, f"'domain_names' repeats a name ({list(names)}); give each domain "
                    "its own")
    if len(names) < n_domains:
        raise _fail(path, f"'domain_names' names {len(names)} domains but 'domain' uses "
                    f"{n_domains}")
    return domain, names


def _split_codes(raw: np.ndarray | None, n: int, seed: int, opts: NpzOptions
                 ) -> tuple[np.ndarray, str]:
    """Per image 0 (train), 1 (val) or 2 (test), and how the split was made."""
    if raw is None:
        order = np.random.default_rng(seed).permutation(n)
        codes = np.zeros(n, dtype=np.int64)
        n_val, n_test = round(n * opts.val_fraction), round(n * opts.test_fraction)
        codes[order[:n_val]] = 1
        codes[order[n_val:n_val + n_test]] = 2
        share = 1 - opts.val_fraction - opts.test_fraction
        return codes, (f"drawn (no 'split' member): {share:.0%} train, "
                       f"{opts.val_fraction:.0%} val, {opts.test_fraction:.0%} test, seed {seed}")
    if raw.dtype.kind in "US":
        lookup = {name: i for i, name in enumerate(SPLITS)}
        bad = sorted({str(s) for s in raw} - set(lookup))
        if bad:
            raise _fail(opts.path, f"'split' holds unknown names {bad}; use train, val, test")
        codes = np.array([lookup[str(s)] for s in raw], dtype=np.int64)
    elif raw.dtype.kind not in "iu" or (raw.size and (raw.min() < 0 or raw.max() > 2)):
        raise _fail(opts.path, "'split' must hold 0 (train), 1 (val) or 2 (test) per image")
    else:
        codes = raw.astype(np.int64)
    if codes.shape != (n,):
        raise _fail(opts.path, f"'split' must have one entry per image ({n})")
    present = set(codes.tolist())
    if 1 in present or not {0, 2} <= present:
        return codes, "from the file's 'split'"
    train = np.flatnonzero(codes == 0)
    held, _ = seeded_split(len(train), opts.val_fraction, np.random.default_rng(seed))
    codes[train[held]] = 1
    return codes, (f"from the file's 'split'; val carved from train: {len(held)} images "
                   f"({opts.val_fraction:.0%}), seed {seed}")


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
    n = x.shape[0] if x.ndim else 0
    x = _inputs(x, path)
    all_tasks, labels = _tasks(arrays, x, path)
    chosen = select_tasks(tuple(all_tasks), tasks)
    domain, domain_names = _domains(arrays, n, path)
    if view == "mdl":
        if domain is None:
            raise _fail(path, "the multi-domain view needs a 'domain' member (a domain index "
                        "per image, names in 'domain_names'); or use benchmark.view=mtl")
        other = [f"'y_{t.name}' ({t.kind})" for t in chosen if t.kind != "classification"]
        if other:
            raise _fail(path, f"the multi-domain view trains one classification task; "
                        f"{', '.join(other)} is not one (pick one with benchmark.tasks=[NAME])")
    codes, how = _split_codes(arrays.get("split"), n, seed, opts)
    full = Split(x=x, labels={t.name: labels[t.name] for t in chosen}, domain=domain)
    splits = {name: full.subset(np.flatnonzero(codes == i)) for i, name in enumerate(SPLITS)}
    empty = [name for name, s in splits.items() if len(s) == 0]
    if empty:
        raise _fail(path, f"split(s) {empty} are empty; give each split at least one image")
    data = Dataset("npz", view, chosen, splits, domains=domain_names,
                   info={"path": str(path), "split": how,
                         "kinds": {t.name: t.kind for t in chosen}},
                   vocab_size=opts.vocab_size, standardize=opts.standardize)
    try:
        _ = data.input  # the inputs' kind, vocabulary and options, checked now
    except ScalarizeError as exc:
        raise _fail(path, str(exc)) from None
    return data
