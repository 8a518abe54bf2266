"""Export a trained run (``scalarize export RUN --format FORMAT --out FILE``): the model with its
input transform folded in, so that the exported graph takes inputs as the run's data held them
(uint8 images N×C×H×W; floats for a run trained on float inputs) and returns one output per head,
in head order, named after the head (the task, or in the multi-domain view the domain or
``shared``): the raw head outputs (logits, values, maps), which each task kind turns into
predictions (a class id is the argmax of its logits). The batch size is free.

Formats:

- ``onnx``: ``torch.onnx.export(..., dynamo=True)`` (needs the ``export`` extra: onnx and
  onnxscript; onnxruntime runs it), input ``x``;
- ``torchscript``: ``torch.jit.trace``, loaded with ``torch.jit.load``;
- ``exported-program``: ``torch.export.export`` saved with ``torch.export.save``, loaded with
  ``torch.export.load(path).module()``.

:func:`run_exported` runs an exported file on an array (what the tests compare with the run).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_with
from scalarize.trained.load import TrainedModel, load_run

FORMATS = ("onnx", "torchscript", "exported-program")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


def _needs(modules: tuple[str, ...], what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ScalarizeError(f"{what} needs {', '.join(missing)}, which is not installed; "
                             "pip install 'scalarize[export]'")


def _example(model: TrainedModel) -> torch.Tensor:
    """Two inputs of the run's shape and dtype (two: a batch of one would fix the size)."""
    return torch.zeros(2, *model.input_shape, dtype=model.input_dtype, device=model.device)


def _batch_dim() -> dict[str, dict[int, Any]]:
    return {"x": {0: torch.export.Dim("batch")}}


def _onnx(model: TrainedModel, example: torch.Tensor, path: Path) -> None:
    _needs(("onnx", "onnxscript"), "--format onnx")
    # the exporter logs a line per torchvision operator it cannot find: not ours to show
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's progress notes and deprecations
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=["x"],
                                        output_names=list(model.head_names),
                                        dynamic_shapes=_batch_dim(), verbose=False,
                                        optimize=True)
    finally:
        registration.setLevel(level)
    assert program is not None
    program.save(str(path))


def _torchscript(model: TrainedModel, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic
        traced = torch.jit.trace(model, (example,), check_trace=False)
    traced.save(str(path))


def _exported_program(model: TrainedModel, example: torch.Tensor, path: Path) -> None:
    program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())
    buffer = io.BytesIO()  # torch names a file by its .pt2 suffix, a buffer by nothing
    torch.export.save(program, buffer)
    path.write_bytes(buffer.getvalue())


_WRITERS: dict[str, Callable[[TrainedModel, torch.Tensor, Path], None]] = {
    "onnx": _onnx, "torchscript": _torchscript, "exported-program": _exported_program}


def export_model(model: TrainedModel, out: Path | str, fmt: str, *,
                 overwrite: bool = False) -> Path:
    """Write ``model`` to ``out`` in format ``fmt`` (see the module doc); an existing ``out``
    is refused unless ``overwrite``, and a failed export leaves nothing behind."""
    if fmt not in FORMATS:
        raise ScalarizeError(f"--format {fmt!r}: give one of {', '.join(FORMATS)}")
    path = Path(out)
    if path.is_dir():
        raise ScalarizeError(f"--out {path} is a folder; give a file, e.g. "
                             f"model{SUFFIXES[fmt]}")
    if path.exists() and not overwrite:
        raise ScalarizeError(f"{path} already exists; pass --overwrite to replace it or "
                             "choose another --out")
    if not path.parent.is_dir():
        raise ScalarizeError(f"the folder of --out {path} does not exist; create it first")
    was_training = model.training
    model.eval()
    example = _example(model)
    try:
        atomic_write_with(path, lambda tmp: _write(fmt, model, example, Path(tmp)))
    finally:
        model.train(was_training)
    return path


def _write(fmt: str, model: TrainedModel, example: torch.Tensor, tmp: Path) -> None:
    try:
        _WRITERS[fmt](model, example, tmp)
    except ScalarizeError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise ScalarizeError(f"the model cannot be exported as {fmt} ({type(exc).__name__}: "
                             f"{text}); try another --format") from exc


def export(run: Path | str, out: Path | str, format: str, *, member: str | int | None = None,
           domain: str | None = None, overwrite: bool = False) -> Path:
    """Export the run folder ``run`` (or ``member`` of a search folder) to ``out`` in
    ``format`` (``onnx``, ``torchscript``, ``exported-program``), as ``scalarize export`` does;
    ``domain`` keeps one domain's head of a multi-domain run."""
    model = load_run(run, member)
    if domain is not None:
        model = model.restricted([domain])
    return export_model(model, out, format, overwrite=overwrite)


def run_exported(path: Path | str, fmt: str, x: np.ndarray) -> list[np.ndarray]:
    """The outputs of the exported model in ``path`` (format ``fmt``) on the inputs ``x``, one
    array per head, in head order."""
    if fmt == "onnx":
        _needs(("onnxruntime",), "running an ONNX export")
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [np.asarray(o) for o in session.run(None, {"x": x})]
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu")
    elif fmt == "exported-program":
        module = torch.export.load(io.BytesIO(Path(path).read_bytes())).module()
    else:
        raise ScalarizeError(f"format {fmt!r}: give one of {', '.join(FORMATS)}")
    with torch.no_grad():
        outputs = module(torch.from_numpy(np.ascontiguousarray(x)))
    return [o.numpy() for o in outputs]


__all__ = ["FORMATS", "SUFFIXES", "export", "export_model", "run_exported"]
