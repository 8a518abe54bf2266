"""What a checkpoint holds besides the weights, so that a trained model can be rebuilt and fed
without its data: the input transform (how raw inputs became what the model saw), the tasks
(kinds and options: the heads), the input shape, the view and the domains.

The trainer writes it into every checkpoint (``Trainer.state_dict()["record"]``, plain numbers,
lists and strings: torch's weights-only loader reads it); :mod:`scalarize.trained` reads it
back to load a run. A checkpoint written before it existed has none; the loader then rebuilds it
from the run's data (:meth:`ModelRecord.of`).

Example:
    >>> import numpy as np
    >>> t = InputTransform(mean=(0.5,), std=(0.25,), raw="uint8")
    >>> t.apply(torch.tensor([[[[255, 0]]]], dtype=torch.uint8)).tolist()
    [[[[2.0, -2.0]]]]
    >>> InputTransform.from_state(t.state()) == t
    True
    >>> features = InputTransform(mean=(1.0, 0.0), std=(2.0, 1.0), raw="float", kind="tabular")
    >>> features.apply(torch.tensor([[3.0, 5.0]])).tolist()
    [[1.0, 5.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from scalarize.benchmarks import Dataset, Task
from scalarize.benchmarks.base import AnySplit
from scalarize.benchmarks.inputs import InputKind, InputSpec
from scalarize.training.data import input_stats


@dataclass(frozen=True)
class InputTransform:
    """How a raw input became the model's input (the trainer's
    :class:`~scalarize.training.data.Normalise`, as a traceable function).

    - ``kind="image"``, ``raw="uint8"``: images whose values are 0..255 were scaled to [0, 1]
      and standardised per channel by ``mean`` and ``std`` (in [0, 1] units; a float input
      given to such a model is taken as already in [0, 1]); ``raw="float255"``: in-memory
      float images, scaled like uint8 ones (÷ 255 whatever their dtype, as the trainer does);
      ``raw="float"``: streamed float images were taken as they are.
    - ``kind="tabular"`` or ``"sequence"``: float features standardised per feature (the last
      axis) by ``mean`` and ``std`` when the data asked for it, taken as they are otherwise
      (``mean`` is ``None``).
    - ``kind="tokens"``: integer ids, as they are.
    """

    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    raw: Literal["uint8", "float", "float255"] = "uint8"
    kind: InputKind = "image"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (a batch) as the model's input; traceable (no branch on values), so an
        exported model folds it in."""
        if self.kind == "tokens":
            return x.long()
        if self.mean is None or self.std is None or (self.kind == "image"
                                                     and self.raw == "float"):
            return x.float()
        shape = (1, -1, *([1] * (x.ndim - 2))) if self.kind == "image" else (-1,)
        mean = torch.tensor(self.mean, device=x.device).view(shape)
        std = torch.tensor(self.std, device=x.device).view(shape)
        scale = 1.0 / 255.0 if x.dtype == torch.uint8 or self.raw == "float255" else 1.0
        return (x.float() * scale - mean) / std

    def state(self) -> dict[str, Any]:
        return {"mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std),
                "raw": self.raw, "kind": self.kind}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputTransform:
        def floats(values: Any) -> tuple[float, ...] | None:
            return None if values is None else tuple(float(v) for v in values)

        return cls(floats(state["mean"]), floats(state["std"]), state.get("raw", "uint8"),
                   state.get("kind", "image"))

    @classmethod
    def of(cls, split: AnySplit, inputs: InputSpec,
           stats: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> InputTransform:
        """The transform the trainer applies to the training split ``split`` of ``inputs``
        (see :mod:`scalarize.training.data`), from its ``stats`` when already computed."""
        mean, std = (stats if stats is not None
                     else input_stats(split, inputs.kind, inputs.standardize))
        raw: Literal["uint8", "float", "float255"] = "uint8"
        if not inputs.is_image:
            raw = "float"
        elif hasattr(split, "x"):  # in memory: scaled by 1/255 whatever the dtype
            raw = "uint8" if np.asarray(split.x).dtype == np.uint8 else "float255"
        else:  # streamed: float images are taken as they are
            first = np.asarray(split.dataset[0][0]) if len(split) else np.zeros(0, np.uint8)
            raw = "uint8" if first.dtype == np.uint8 else "float"

        def floats(values: np.ndarray | None) -> tuple[float, ...] | None:
            return None if values is None else tuple(float(v) for v in values)

        return cls(floats(mean), floats(std), raw, inputs.kind)


@dataclass(frozen=True)
class ModelRecord:
    """What rebuilds and feeds a trained model besides its weights (see the module doc)."""

    input: InputSpec
    view: str
    tasks: tuple[Task, ...]
    domains: tuple[str, ...]
    inputs: InputTransform

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's input shape (C, H, W for images)."""
        return self.input.shape

    @classmethod
    def of(cls, data: Dataset,
           stats: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> ModelRecord:
        """The record of a model trained on ``data`` (``stats``: its training split's input
        statistics, when already computed)."""
        return cls(data.input, data.view, tuple(data.tasks), tuple(data.domains),
                   InputTransform.of(data.splits["train"], data.input, stats))

    def state(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "input": self.input.record(),
                "view": self.view,
                "tasks": [{"name": t.name, "classes": t.num_classes, "kind": t.kind,
                           "options": dict(t.options), "description": t.description}
                          for t in self.tasks],
                "domains": list(self.domains), "inputs": self.inputs.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelRecord:
        tasks = tuple(Task(t["name"], int(t["classes"]), t.get("description", ""), t["kind"],
                           dict(t.get("options") or {})) for t in state["tasks"])
        saved = state.get("input")
        spec = (InputSpec(saved["kind"], tuple(int(d) for d in saved["shape"]),
                          saved.get("vocab_size"), bool(saved.get("standardize", False)))
                if saved is not None
                else InputSpec("image", tuple(int(d) for d in state["input_shape"])))
        return cls(spec, state["view"], tasks, tuple(state["domains"]),
                   InputTransform.from_state(state["inputs"]))


__all__ = ["InputTransform", "ModelRecord"]
