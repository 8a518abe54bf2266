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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from scalarize.benchmarks import Dataset, Task
from scalarize.benchmarks.base import AnySplit
from scalarize.training.data import split_stats


@dataclass(frozen=True)
class InputTransform:
    """How a raw input became the model's input. ``raw="uint8"``: images whose values are
    0..255 were scaled to [0, 1] and standardised per channel by ``mean`` and ``std`` (in [0, 1]
    units; a float input given to such a model is taken as already in [0, 1]); ``raw="float"``:
    inputs were taken as they are (a streamed split of floats)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    raw: Literal["uint8", "float"] = "uint8"

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (a batch, channels on axis 1) as the model's float input; traceable (no
        branch on values), so an exported model folds it in."""
        if self.raw == "float":
            return x.float()
        shape = (1, -1, *([1] * (x.ndim - 2)))
        mean = torch.tensor(self.mean, device=x.device).view(shape)
        std = torch.tensor(self.std, device=x.device).view(shape)
        scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
        return (x.float() * scale - mean) / std

    def state(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "raw": self.raw}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputTransform:
        return cls(tuple(float(v) for v in state["mean"]), tuple(float(v) for v in state["std"]),
                   state.get("raw", "uint8"))

    @classmethod
    def of(cls, split: AnySplit, stats: tuple[np.ndarray, np.ndarray] | None = None
           ) -> InputTransform:
        """The transform the trainer applies to the training split ``split`` (see
        :mod:`scalarize.training.data`), from its channel ``stats`` when already computed."""
        mean, std = stats if stats is not None else split_stats(split)
        raw: Literal["uint8", "float"] = "uint8"
        if not hasattr(split, "x"):  # streamed: floats are taken as they are
            first = np.asarray(split.dataset[0][0]) if len(split) else np.zeros(0, np.uint8)
            raw = "uint8" if first.dtype == np.uint8 else "float"
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std), raw)


@dataclass(frozen=True)
class ModelRecord:
    """What rebuilds and feeds a trained model besides its weights (see the module doc)."""

    input_shape: tuple[int, ...]
    view: str
    tasks: tuple[Task, ...]
    domains: tuple[str, ...]
    inputs: InputTransform

    @classmethod
    def of(cls, data: Dataset, stats: tuple[np.ndarray, np.ndarray] | None = None
           ) -> ModelRecord:
        """The record of a model trained on ``data`` (``stats``: its training split's channel
        mean and std, when already computed)."""
        return cls(tuple(int(d) for d in data.image_shape), data.view, tuple(data.tasks),
                   tuple(data.domains), InputTransform.of(data.splits["train"], stats))

    def state(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "view": self.view,
                "tasks": [{"name": t.name, "classes": t.num_classes, "kind": t.kind,
                           "options": dict(t.options), "description": t.description}
                          for t in self.tasks],
                "domains": list(self.domains), "inputs": self.inputs.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelRecord:
        tasks = tuple(Task(t["name"], int(t["classes"]), t.get("description", ""), t["kind"],
                           dict(t.get("options") or {})) for t in state["tasks"])
        return cls(tuple(int(d) for d in state["input_shape"]), state["view"], tasks,
                   tuple(state["domains"]), InputTransform.from_state(state["inputs"]))


__all__ = ["InputTransform", "ModelRecord"]
