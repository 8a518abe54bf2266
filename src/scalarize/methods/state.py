"""Exact resume for torchjd's stateful aggregators and scalarizers.

Some torchjd objects keep what they learned outside ``state_dict()``: GradVac its EMA targets of
the pairwise cosines (a buffer that only exists after the first step), Nash-MTL its previous
solution and step counter (numpy arrays beside a cvxpy problem), DWA its running loss sums and
the previous epochs' mean losses, FAMO the Adam that moves its logits and the losses before the
step; ExcessMTL its running squared gradients, excess-risk baseline and weights, PCD its moving
average of squared gradient norms, CR-MOGM its smoothed weights, MoDo and SDMGrad their task
weights (buffers that only exist after the first step, beside Python step counters and keys).
:func:`capture` reads that state as plain data (tensors, floats, lists, dicts) and
:func:`restore` writes it back, so a :class:`~scalarize.methods.base.Method` can carry it in its
extra state (``nn.Module.get_extra_state``) and the trainer's checkpoint, a ``torch.save`` /
``torch.load`` and a ``copy.deepcopy`` all keep it. Parameters and buffers that ``state_dict()``
already holds (UW's and IMTL-L's scales, FAMO's logits) are not repeated here.

No method has its own random generator, numpy's or Python's: PCGrad's and GradVac's task orders
are drawn from torch's CPU generator, GradDrop's masks and RLW's weights from the generator of the
losses' device. The trainer checkpoints the CPU one and, on CUDA, the CUDA one.

An aggregator or scalarizer torchjd marks ``Stateful`` that is not handled here draws a warning
when a method is built with it.

Methods written here that move a tensor of their own by an Adam of their own (GradNorm,
Auto-Lambda) share :class:`OwnAdamMethod`, which carries that Adam in the extra state.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn
from torchjd import Stateful
from torchjd.aggregation import (
    CRMOGMWeighting,
    ExcessMTLWeighting,
    GradVacWeighting,
    MoDoWeighting,
    NashMTL,
    PCDWeighting,
    SDMGradWeighting,
)
from torchjd.scalarization import DWA, FAMO, IMTLL, UW

from scalarize.methods.base import Method

State = dict[str, Any]
Opt = TypeVar("Opt", bound=torch.optim.Optimizer)


def _clone(tensor: torch.Tensor | None, device: torch.device | None = None
           ) -> torch.Tensor | None:
    if tensor is None:
        return None
    return tensor.detach().to(device if device is not None else tensor.device, copy=True)


def optimizer_state(optimizer: torch.optim.Optimizer | None) -> State | None:
    """A detached copy of ``optimizer``'s state (``None`` before it was created)."""
    return None if optimizer is None else copy.deepcopy(optimizer.state_dict())


def load_optimizer(make: Callable[[], Opt], state: State | None) -> Opt | None:
    """A new optimizer from ``make()`` holding ``state`` (moved to its parameters' device), or
    ``None`` when there was none yet."""
    if state is None:
        return None
    optimizer = make()
    optimizer.load_state_dict(copy.deepcopy(state))
    return optimizer


def _prepare_gradvac(weighting: GradVacWeighting) -> None:
    # the EMA targets are a buffer that only exists after the first step: as a persistent
    # buffer a fresh method could not load it, so it travels in the extra state instead
    weighting.register_buffer("_phi_t", weighting._phi_t, persistent=False)
    weighting.register_load_state_dict_pre_hook(_gradvac_buffer_of_old_checkpoints)


def _gradvac_buffer_of_old_checkpoints(weighting: GradVacWeighting, state_dict: dict[str, Any],
                                       prefix: str, *args: Any) -> None:
    phi = state_dict.pop(f"{prefix}_phi_t", None)
    if phi is not None:
        _set_gradvac(weighting, {"phi": phi})


def _get_gradvac(weighting: GradVacWeighting) -> State:
    return {"phi": _clone(weighting._phi_t)}


def _set_gradvac(weighting: GradVacWeighting, state: State) -> None:
    phi = state["phi"]
    if phi is None:
        weighting.reset()
        return
    # GradVac computes on the CPU
    weighting._phi_t = _clone(phi, torch.device("cpu"))  # type: ignore[assignment]
    weighting._state_key = (phi.shape[0], phi.dtype)


def _get_nash(aggregator: NashMTL) -> State:
    weighting = aggregator.weighting
    return {"step": float(weighting.step),
            "prvs_alpha": torch.from_numpy(np.array(weighting.prvs_alpha, copy=True)),
            "normalization_factor": torch.from_numpy(
                np.array(weighting.normalization_factor, copy=True))}


def _set_nash(aggregator: NashMTL, state: State) -> None:
    weighting = aggregator.weighting
    weighting.step = float(state["step"])
    weighting.prvs_alpha = state["prvs_alpha"].numpy().copy()
    weighting.normalization_factor = state["normalization_factor"].numpy().copy()
    if weighting.step > 0:
        # the cvxpy problem is built at step 0; every solve sets all its parameters, so a
        # rebuilt problem continues exactly (at step 0 the next call builds it anyway)
        weighting._init_optim_problem()


def _get_dwa(dwa: DWA) -> State:
    return {"loss_sum": _clone(dwa._loss_sum), "n_batches": int(dwa._n_batches),
            "previous": [t.detach().clone() for t in dwa._previous_averages]}


def _set_dwa(dwa: DWA, state: State) -> None:
    dwa._loss_sum = _clone(state["loss_sum"])
    dwa._n_batches = int(state["n_batches"])
    dwa._previous_averages = [t.detach().clone() for t in state["previous"]]


def _place_dwa(dwa: DWA, device: torch.device) -> None:
    # DWA's sums live beside the losses; a checkpoint is loaded on the CPU
    if dwa._loss_sum is not None and dwa._loss_sum.device != device:
        dwa._loss_sum = dwa._loss_sum.to(device)
    if any(t.device != device for t in dwa._previous_averages):
        dwa._previous_averages = [t.to(device) for t in dwa._previous_averages]


def _get_famo(famo: FAMO) -> State:
    return {"optimizer": optimizer_state(famo._optimizer),
            "prev_losses": _clone(famo._prev_losses)}


def _set_famo(famo: FAMO, state: State) -> None:
    famo._optimizer = load_optimizer(
        lambda: torch.optim.Adam([famo._w], lr=famo.lr, weight_decay=famo.weight_decay),
        state["optimizer"])
    famo._prev_losses = _clone(state["prev_losses"], famo._w.device)


def _no_state(module: nn.Module) -> State:
    return {}


def _nothing(module: nn.Module, *args: Any) -> None:
    return None


@dataclass(frozen=True)
class _Handler:
    get: Callable[[Any], State]
    set: Callable[[Any, State], None]
    prepare: Callable[[Any], None] = _nothing
    place: Callable[[Any, torch.device], None] = _nothing


def _buffers(names: tuple[str, ...], counters: tuple[str, ...] = (),
             key: Callable[[Any], Any] | None = None, movable: bool = True) -> _Handler:
    """The handler of a weighting whose state is ``names`` (buffers that are ``None`` until the
    first step: non-persistent, carried in the extra state as GradVac's are) and ``counters``
    (Python numbers); ``key(module)`` rebuilds the ``_state_key`` it checks its state against.
    ``movable``: the state lives beside the Jacobian (moved to its device before a step), not
    on the CPU where the weighting keeps it."""

    def prepare(module: nn.Module) -> None:
        for name in names:
            module.register_buffer(name, getattr(module, name), persistent=False)

    def get(module: nn.Module) -> State:
        state: State = {name: _clone(getattr(module, name)) for name in names}
        state.update({name: copy.deepcopy(getattr(module, name)) for name in counters})
        return state

    def set_(module: nn.Module, state: State) -> None:
        for name in names:
            setattr(module, name, _clone(state[name]))
        for name in counters:
            setattr(module, name, copy.deepcopy(state[name]))
        if key is not None:
            module._state_key = key(module)

    def place(module: nn.Module, device: torch.device) -> None:
        if not movable or all(getattr(module, n) is None or getattr(module, n).device == device
                              for n in names):
            return
        for name in names:
            if (tensor := getattr(module, name)) is not None:
                setattr(module, name, tensor.to(device))
        if key is not None:
            module._state_key = key(module)

    return _Handler(get, set_, prepare=prepare, place=place)


def _vector_key(name: str) -> Callable[[Any], Any]:
    """``(m, dtype, device)`` of the state vector ``name`` (``None`` before the first step)."""

    def key(module: nn.Module) -> Any:
        vector = getattr(module, name)
        return None if vector is None else (vector.shape[0], vector.dtype, vector.device)

    return key


def _excess_key(weighting: ExcessMTLWeighting) -> Any:
    sums = weighting._sq_grad_sum
    return None if sums is None else (*sums.shape, sums.dtype, sums.device)


def _pcd_key(weighting: PCDWeighting) -> Any:
    ema = weighting._sq_norm_ema
    return None if ema is None else ema.shape[0]


_HANDLERS: dict[type[nn.Module], _Handler] = {
    GradVacWeighting: _Handler(_get_gradvac, _set_gradvac, prepare=_prepare_gradvac),
    NashMTL: _Handler(_get_nash, _set_nash),
    DWA: _Handler(_get_dwa, _set_dwa, place=_place_dwa),
    FAMO: _Handler(_get_famo, _set_famo),
    ExcessMTLWeighting: _buffers(("_weights", "_sq_grad_sum", "_initial_w", "_warmup_w_sum"),
                                 ("_n_steps",), key=_excess_key),
    PCDWeighting: _buffers(("_sq_norm_ema", "_n_steps"), key=_pcd_key, movable=False),
    CRMOGMWeighting: _buffers(("_lambda",)),
    MoDoWeighting: _buffers(("_lambda",), key=_vector_key("_lambda")),
    SDMGradWeighting: _buffers(("_w",), key=_vector_key("_w")),
    UW: _Handler(_no_state, _nothing),  # log-variances: parameters, in state_dict()
    IMTLL: _Handler(_no_state, _nothing),  # log-scales: parameters, in state_dict()
}


def _handler(module: nn.Module) -> _Handler | None:
    for cls in type(module).__mro__:
        if cls in _HANDLERS:
            return _HANDLERS[cls]
    return None


def _stateful(root: nn.Module) -> list[tuple[str, nn.Module, _Handler]]:
    found = []
    for path, module in root.named_modules():
        handler = _handler(module)
        if handler is not None:
            found.append((path, module, handler))
    return found


def prepare(root: nn.Module) -> None:
    """Make ``root``'s torchjd state checkpointable; warn about state nobody can save."""
    handled = [path for path, _, _ in _stateful(root)]
    for _, module, handler in _stateful(root):
        handler.prepare(module)
    announced: list[str] = []
    for path, module in root.named_modules():
        if not isinstance(module, Stateful) or any(
                _within(path, p) or _within(p, path) for p in handled) or any(
                _within(path, p) for p in announced):
            continue
        warnings.warn(f"{type(module).__name__} keeps state that scalarize does not "
                      "checkpoint: a resumed run will not continue it exactly", stacklevel=3)
        announced.append(path)


def _within(path: str, ancestor: str) -> bool:
    return not ancestor or path == ancestor or path.startswith(f"{ancestor}.")


def capture(root: nn.Module) -> State:
    """The state of every stateful torchjd object in ``root``, by submodule path."""
    out = {}
    for path, module, handler in _stateful(root):
        if state := handler.get(module):
            out[path] = state
    return out


def restore(root: nn.Module, state: State) -> None:
    """Inverse of :func:`capture`."""
    for path, module, handler in _stateful(root):
        if path in state:
            handler.set(module, state[path])


def place(root: nn.Module, device: torch.device) -> None:
    """Move restored state that lives beside the losses (DWA's) to ``device``."""
    for _, module, handler in _stateful(root):
        handler.place(module, device)


class TorchjdMethod(Method):
    """A method around one torchjd object (:meth:`wrapped`) whose changing state rides in the
    method's extra state, so ``state_dict()`` (and every checkpoint) carries it."""

    uses_weights: ClassVar[bool] = False

    def wrapped(self) -> nn.Module:
        raise NotImplementedError

    def get_extra_state(self) -> State:
        return capture(self.wrapped())

    def set_extra_state(self, extra: State | None) -> None:
        if extra is not None:  # None: a checkpoint from before methods kept their state
            restore(self.wrapped(), extra)


class OwnAdamMethod(Method):
    """A method that moves one tensor of its own (:attr:`adam_target`, a buffer it names) by an
    Adam of its own at learning rate ``self.lr``: GradNorm's log-weights, Auto-Lambda's λ. The
    Adam is made at the first step; its state is the method's extra state (``{"adam": ...}``,
    ``None`` before the first step), so a resumed run moves the tensor exactly as an
    uninterrupted one."""

    #: the name of the buffer the Adam moves
    adam_target: ClassVar[str]
    lr: float
    _adam: torch.optim.Adam | None = None

    def get_extra_state(self) -> State:
        return {"adam": optimizer_state(self._adam)}

    def set_extra_state(self, extra: State | None) -> None:
        if extra is not None:
            self._adam = load_optimizer(self._new_adam, extra["adam"])

    def _new_adam(self) -> torch.optim.Adam:
        return torch.optim.Adam([getattr(self, self.adam_target)], lr=self.lr)

    def adam_step(self, grad: torch.Tensor) -> None:
        """One Adam step of the target along ``grad`` (made on the first call)."""
        if self._adam is None:
            self._adam = self._new_adam()
        target = getattr(self, self.adam_target)
        target.grad = grad.detach().to(target)
        self._adam.step()
        target.grad = None
