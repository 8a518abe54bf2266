"""Predictions of a trained run to a file (``scalarize predict RUN --data FILE_OR_TARGET --out
preds.npz``, or ``--split test`` for the run's own data).

The inputs:

- an ``.npz`` file holding ``x`` (the inputs, examples first, as the run's data held them:
  uint8 images N×C×H×W, or floats in [0, 1]) and, for a multi-domain run with a head per
  domain, optionally ``domain`` (one index or name per example; else ``--domain``);
- an import target ``package.module:load``: a benchmark loader, the same contract as
  ``benchmark.name`` (``load(view, tasks, seed, **options) -> Dataset``), called with the
  run's view and seed; its ``--split`` (default ``test``) is predicted;
- nothing: the run's own data, loaded as the run loaded it, and its ``--split``.

The output ``.npz`` holds one array per task, named after the task: its predictions in the
task's units (class ids, values, maps; see
:meth:`~scalarize.training.task_kinds.TaskKind.predict`); with ``raw``, also
``output_<head>``, each head's raw output (logits, values, maps); for a multi-domain run, also
``domain``, the domain index of each example. An existing file is refused unless
``overwrite``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from scalarize.benchmarks import SPLITS, Dataset, load_benchmark
from scalarize.benchmarks.stream import collate
from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_with
from scalarize.registry import is_import_target
from scalarize.trained.load import TrainedModel, run_data


def split_inputs(data: Dataset, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The inputs and domain indices of ``split`` of ``data`` (a streamed split is read
    whole)."""
    if split not in SPLITS:
        raise ScalarizeError(f"--split {split!r}: give one of {', '.join(SPLITS)}")
    chosen = data.splits[split]
    if hasattr(chosen, "x"):
        x = np.asarray(chosen.x)
    else:
        items = [chosen.dataset[i] for i in range(len(chosen))]
        x = collate(items)[0].numpy() if items else np.zeros((0, *data.input.shape), np.uint8)
    return x, chosen.domain


def _npz_inputs(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.is_file():
        raise ScalarizeError(f"--data {path} is not a file; give an .npz holding 'x', or an "
                             "import target package.module:load")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise ScalarizeError(f"{path} holds no 'x' (it holds {sorted(archive.files)});"
                                     " save the inputs as x=...")
            x = archive["x"]
            domain = archive["domain"] if "domain" in archive.files else None
    except ScalarizeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ScalarizeError(f"{path} is not a readable .npz file ({type(exc).__name__}); "
                             "save it with numpy.savez") from None
    return x, domain


def read_inputs(model: TrainedModel, data: str | None, split: str | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """The inputs (and per-example domains, if known) that ``data`` and ``split`` name (see
    the module doc)."""
    if data is not None and not is_import_target(data):
        if split is not None:
            raise ScalarizeError("--split picks a split of the run's data or of a loader's; "
                                 "an .npz file given with --data is predicted whole")
        return _npz_inputs(Path(data))
    if data is None and split is None:
        raise ScalarizeError("give --data FILE.npz (or package.module:load), or --split "
                             "train|val|test for the run's own data")
    config = model.config
    loaded = (run_data(model.source) if data is None else
              load_benchmark(data, view=model.view, seed=config.benchmark.seed))  # type: ignore[arg-type]
    return split_inputs(loaded, split or "test")


def predictions(model: TrainedModel, x: np.ndarray, domain: Any = None, raw: bool = False,
                batch_size: int = 256) -> dict[str, np.ndarray]:
    """What :func:`write_predictions` saves (see the module doc)."""
    arrays = model.predict(x, domain, batch_size)
    if model.view == "mdl" and domain is not None:
        arrays["domain"] = model.domain_index(domain, len(x))
    if raw:
        arrays.update({f"output_{name}": out.numpy()
                       for name, out in model.outputs(x, batch_size).items()})
    return arrays


def write_predictions(arrays: dict[str, np.ndarray], out: Path | str,
                      overwrite: bool = False) -> Path:
    """Save ``arrays`` as the ``.npz`` file ``out`` (atomically; an existing one only with
    ``overwrite``)."""
    path = Path(out)
    if path.suffix != ".npz":
        raise ScalarizeError(f"--out {path}: give a file ending in .npz")
    if path.is_dir():
        raise ScalarizeError(f"--out {path} is a folder; give a file such as preds.npz")
    if path.exists() and not overwrite:
        raise ScalarizeError(f"{path} already exists; pass --overwrite to replace it or "
                             "choose another --out")
    if not path.parent.is_dir():
        raise ScalarizeError(f"the folder of --out {path} does not exist; create it first")

    def save(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]

    atomic_write_with(path, save)
    return path


def predict_to_file(model: TrainedModel, out: Path | str, data: str | None = None,
                    split: str | None = None, domain: Any = None, raw: bool = False,
                    overwrite: bool = False) -> dict[str, np.ndarray]:
    """Predict the inputs ``data`` / ``split`` name into ``out``; returns what was saved. The
    output is checked before anything is computed, so a refusal costs nothing."""
    target = Path(out)
    if target.exists() and not overwrite and not target.is_dir():
        raise ScalarizeError(f"{target} already exists; pass --overwrite to replace it or "
                             "choose another --out")
    x, known = read_inputs(model, data, split)
    chosen = domain if domain is not None else known
    if model.view != "mdl":
        chosen = None
    arrays = predictions(model, x, chosen, raw, model.config.train.eval_batch_size)
    write_predictions(arrays, out, overwrite)
    return arrays


__all__ = ["predict_to_file", "predictions", "read_inputs", "split_inputs",
           "write_predictions"]
