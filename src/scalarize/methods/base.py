"""The method interface: how per-objective losses become one update.

The trainer computes one loss per objective (task or domain) and hands them to a method, which
performs the backward pass (filling ``.grad``) and returns the scalar it optimised, for logging.
Static scalarization, Jacobian-based aggregators and loss-balancing methods all sit behind this
one interface, so the training loop never changes when a method is added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.methods.shard import Shard


@dataclass
class StepContext:
    """What a method may use besides the losses: the model, its shared parameters, the shared
    features of the batch (for methods that work on feature gradients), and ``counts``, the
    batch's examples per objective (partial labels: an objective with none has a loss of 0 that
    gives no gradient; Jacobian methods skip its row). ``None`` counts: every objective has
    examples. ``mask`` (objectives × examples, when given) says which examples count for which
    objective (``counts`` is its row sums); MoDo and SDMGrad count each half of the batch with
    it. ``per_example`` (when given) evaluates the batch again with the model's current
    parameters and returns its per-example losses (objectives × examples, with their graph), and
    ``lr`` is the optimiser's learning rate for this step: methods that look ahead (Auto-Lambda's
    virtual step) use both.

    A model with task-specific paths (:mod:`scalarize.models.per_task`) gives ``features`` as
    a mapping ``objective -> features`` (``per_task``); its parameters outside
    ``shared_params`` are task-specific, each reached by one objective's loss, as the heads.

    ``shard`` (on several processes only) is this process's share of the step
    (:mod:`scalarize.methods.shard`): ``counts`` are then the global batch's."""

    model: nn.Module
    shared_params: list[nn.Parameter]
    features: torch.Tensor | Mapping[str, torch.Tensor]
    step: int
    counts: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    per_example: Callable[[], torch.Tensor] | None = None
    lr: float | None = None
    shard: Shard | None = None

    @property
    def per_task(self) -> bool:
        """Whether the model gives each objective its own features (no one shared tensor)."""
        return not isinstance(self.features, torch.Tensor)

    def feature_tensors(self) -> list[torch.Tensor]:
        """Every feature tensor of the step: the shared one, or one per objective."""
        features = self.features
        return [features] if isinstance(features, torch.Tensor) else list(features.values())

    def shared_features(self, method: str) -> torch.Tensor:
        """The one shared feature tensor that ``method`` works on; a model with features per
        objective is refused in one line.

        Example:
            >>> ctx = StepContext(nn.Identity(), [], {"a": torch.zeros(1)}, 0)
            >>> ctx.shared_features("mgda_ub")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            scalarize.errors.ScalarizeError: method 'mgda_ub' works on one feature tensor ...
        """
        if isinstance(self.features, torch.Tensor):
            return self.features
        raise needs_shared_features(method)

    def batch_size(self) -> int:
        """The number of examples in the step's batch."""
        return int(self.feature_tensors()[0].shape[0])

    def present(self) -> list[int] | None:
        """The objectives with examples in this batch when some have none (read on the host);
        ``None`` when every objective has examples.

        Example:
            >>> ctx = StepContext(nn.Identity(), [], torch.zeros(1), 0, torch.tensor([4, 0, 2]))
            >>> ctx.present()
            [0, 2]
        """
        if self.counts is None:
            return None
        has = (self.counts > 0).tolist()
        return None if all(has) else [i for i, h in enumerate(has) if h]


def needs_shared_features(method: str) -> ScalarizeError:
    """The one line refusing ``method``, which works on one shared feature tensor, a model
    that gives each objective its own features."""
    return ScalarizeError(f"method {method!r} works on one feature tensor that every "
                          "objective shares, and this model gives each objective its own "
                          "features (task-specific paths); use a method that works on the "
                          "shared parameters instead, e.g. mgda, pcgrad or upgrad")


class Method(nn.Module):
    """Base class: override :meth:`backward`. Learnable state (e.g. loss scales) lives in the
    module's parameters, which the trainer adds to the optimiser and checkpoints.

    Everything else a method learns while training (an inner optimiser, running statistics, a
    solver's previous solution) must be in ``state_dict()`` too, so that a resumed run or a
    population member that copies another continues exactly: as buffers, or through
    ``get_extra_state`` / ``set_extra_state``. A checkpoint written before a method kept extra
    state loads with the method's fresh state.
    """

    #: whether the run's scalarization weights shape the update; ``False`` for methods that
    #: choose their own weights (comparisons, sweeps and searches refuse weights for them:
    #: :func:`~scalarize.methods.refuse_ignored_weights`)
    uses_weights: ClassVar[bool] = True
    #: whether :meth:`backward` may run through a compiled encoder (``train.compile``): it
    #: backpropagates the encoder's part of the step's graph once. Opt-in: a method that takes
    #: per-objective gradients of the encoder (``retain_graph=True``) would get wrong ones
    #: (:mod:`scalarize.training.compiling` says why), so a method trains eagerly unless it
    #: sets ``True``
    compiles: ClassVar[bool] = False
    #: whether :meth:`backward` works on one feature tensor that every objective shares
    #: (``StepContext.shared_features``): a model with task-specific paths is refused before
    #: training (:func:`~scalarize.launch.check_run`)
    needs_shared_features: ClassVar[bool] = False
    #: whether a step on several processes (``scalarize train --nproc N``) gives the update of
    #: one process on the same global batch: ``True`` (it follows the contract of
    #: :mod:`scalarize.methods.shard`), or why not, which the run's refusal says
    distributes: ClassVar[bool | str] = "it has not been made to train on several processes"

    def __init__(self) -> None:
        super().__init__()
        if type(self).set_extra_state is not nn.Module.set_extra_state:
            self.register_load_state_dict_pre_hook(_without_extra_state)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        """Backpropagate ``losses`` (one per objective) given the scalarization ``weights`` for
        this step; return the detached scalar that was optimised."""
        raise NotImplementedError

    def after_step(self, recompute_losses: Callable[[], torch.Tensor]) -> None:
        """Called after the optimiser step; ``recompute_losses()`` evaluates the batch's losses
        with the updated model (only methods that need it call it, e.g. FAMO)."""

    def on_epoch_end(self) -> None:
        """Called by the trainer after each training epoch: DWA rolls its loss history here."""


def _without_extra_state(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                         *args: Any) -> None:
    """A checkpoint from before the method kept extra state: load ``None`` (keep fresh)."""
    state_dict.setdefault(f"{prefix}_extra_state", None)
