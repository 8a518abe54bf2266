"""A weight schedule: scalarization weights that change at epoch boundaries (what population
search finds and ``scalarize replay`` retrains with).

Example:
    >>> WeightSchedule([(0, [0.5, 0.5]), (2, [0.9, 0.1])]).at(3)
    [0.9, 0.1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scalarize.errors import ScalarizeError
from scalarize.training.callbacks import Callback
from scalarize.weights import SimplexWeights

if TYPE_CHECKING:
    from scalarize.training.trainer import Trainer


class WeightSchedule(Callback):
    """Sets the trainer's weights to the last entry whose epoch is ≤ the epochs finished,
    before the first step (also when resuming) and after every epoch."""

    def __init__(self, schedule: Sequence[tuple[int, Sequence[float]]]) -> None:
        entries = sorted((int(e), [float(w) for w in ws]) for e, ws in schedule)
        if not entries or entries[0][0] != 0:
            raise ScalarizeError("scalarization.schedule must start with an entry at epoch 0, "
                                 "e.g. [[0, [0.5, 0.5]], [4, [0.7, 0.3]]]")
        self.entries = entries

    def at(self, epoch: int) -> list[float]:
        """The weights that apply once ``epoch`` epochs are finished."""
        return [ws for e, ws in self.entries if e <= epoch][-1]

    def _apply(self, trainer: Trainer) -> None:
        values = tuple(self.at(trainer.epoch))
        if values != tuple(trainer.weights.values):
            trainer.set_weights(SimplexWeights(trainer.objectives.names, values))

    def on_fit_start(self, trainer: Trainer) -> None:
        self._apply(trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._apply(trainer)
