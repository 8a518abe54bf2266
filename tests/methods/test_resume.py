"""Every registered method resumes exactly: a run stopped after an epoch and continued from its
checkpoint (through ``torch.save``/``torch.load`` and a deep copy, as a PBT exploit does) ends
with the same model, the same method state and the same metrics as a run that never stopped.

The method's state is compared twice: through its ``state_dict()`` (what the checkpoint holds)
and through a walk over every attribute of every submodule (tensors, numbers, arrays, inner
optimisers), so state a library keeps outside ``state_dict()`` cannot slip through.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from scalarize.config import load_config
from scalarize.launch import train_run
from scalarize.methods import METHODS, build_method
from scalarize.runs import RunDir
from scalarize.training import Callback, Trainer, load_data

TINY = [
    "model.spec=vit-d1-w16-p8",
    "benchmark.options={n_train: 48, n_val: 16, n_test: 16, image_size: 16, cache: false}",
    "train.batch_size=16",
    "train.warmup_epochs=0",
    "train.device=cpu",
]
SKIPPED_TYPES = ("cvxpy.",)  # solver problem objects: rebuilt from the saved numbers


def _config(name: str, epochs: int = 2):
    return load_config(None, [*TINY, f"train.epochs={epochs}", f"method.name={name}"])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Models this small train fastest on one thread, and a shared CPU stalls a thread pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return load_data(_config("static"))


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(copy.deepcopy(state), buffer)
    buffer.seek(0)
    return copy.deepcopy(torch.load(buffer, weights_only=False))


def _equal(a: Any, b: Any, where: str = "") -> None:
    """Exact, recursive equality of (nested) states; fails naming the first difference."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where}: {a} != {b}"
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        assert np.array_equal(a, b), f"{where}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: {list(a)} != {list(b)}"
        for key in a:
            _equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


_MODULE_INTERNALS = set(vars(nn.Module()))


def _attributes(method: nn.Module) -> dict[str, Any]:
    """Every piece of data any submodule holds, whether or not ``state_dict()`` has it."""
    out: dict[str, Any] = {}
    for prefix, module in method.named_modules():
        out.update({f"{prefix}.{k}": v.detach() for k, v in module.named_parameters(
            recurse=False)})
        out.update({f"{prefix}.{k}": v for k, v in module.named_buffers(recurse=False)})
        for key, value in vars(module).items():
            if key in _MODULE_INTERNALS or callable(value):
                continue
            if type(value).__module__.startswith(SKIPPED_TYPES):
                continue
            if isinstance(value, torch.optim.Optimizer):
                value = value.state_dict()["state"]
            out[f"{prefix}.{key}"] = value
    return out


def _epoch_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded numbers of each epoch, without its timings."""
    keep = ("epoch", "step", "lr", "train_loss", "train_objective", "val_acc", "val_loss",
            "val_metrics", "val_avg_acc", "weights")
    return [{k: r[k] for k in keep} for r in history]


@pytest.mark.parametrize("name", METHODS.names())
def test_resume_after_an_epoch_equals_the_uninterrupted_run(name, data):
    cfg = _config(name)
    whole = Trainer(cfg, data=data, progress=False)
    whole.train_epochs(2)

    first = Trainer(cfg, data=data, progress=False)
    first.train_epochs(1)
    state = _round_trip(first.state_dict())
    del first
    torch.manual_seed(12345)  # the checkpoint, not the process, must decide what comes next
    resumed = Trainer(cfg, data=data, progress=False)
    resumed.load_state_dict(state)
    resumed.train_epochs(1)

    for (key, a), (_, b) in zip(whole.model.state_dict().items(),
                                resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{name}: model {key} differs after resume"
    _equal(whole.method.state_dict(), resumed.method.state_dict(), f"{name}.state_dict")
    _equal(_attributes(whole.method), _attributes(resumed.method), name)
    _equal(whole.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"],
           f"{name}.optimizer")
    _equal(_epoch_records(whole.history), _epoch_records(resumed.history), f"{name}.history")


@pytest.mark.parametrize("name", METHODS.names())
def test_a_checkpoint_loads_into_a_trained_method(name, data):
    """A PBT exploit loads a member's state into another member that has trained too."""
    cfg = _config(name)
    source = Trainer(cfg, data=data, progress=False)
    source.train_epochs(1)
    target = Trainer(load_config(None, [*TINY, "train.epochs=2", f"method.name={name}",
                                        "seed=1"]), data=data, progress=False)
    target.train_epochs(1)
    target.load_state_dict(copy.deepcopy(source.state_dict()))
    _equal(_attributes(source.method), _attributes(target.method), name)


class _Kill(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", ["gradnorm", "famo", "dwa", "nash_mtl", "gradvac",
                                  "excess_mtl", "pcd", "cr_mogm", "modo", "sdmgrad",
                                  "imtl", "moco", "db_mtl", "auto_lambda"])
def test_resume_from_the_run_folder(tmp_path, name, data):
    cfg = _config(name, epochs=3)
    train_run(cfg, tmp_path / "a", data=data, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "b", data=data, callbacks=[_Kill()], progress=False)
    train_run(cfg, tmp_path / "b", resume=True, data=data, progress=False)
    whole, resumed = _last_checkpoint(tmp_path / "a"), _last_checkpoint(tmp_path / "b")
    assert resumed["epoch"] == whole["epoch"] == 3
    for key in ("model", "method", "optimizer"):
        _equal(whole[key], resumed[key], f"{name}.{key}")
    _equal(_epoch_records(whole["history"]), _epoch_records(resumed["history"]),
           f"{name}.history")


def _last_checkpoint(out) -> dict[str, Any]:
    (run,) = [path for path in out.iterdir() if path.is_dir()]
    state = RunDir(run).load_checkpoint()
    assert state is not None
    return state


def test_dwa_rolls_its_loss_history_at_each_epoch_end_and_a_checkpoint_keeps_it():
    method = build_method("dwa", {}, n_objectives=2)
    for epoch_losses in ([4.0, 2.0], [2.0, 2.0]):  # the first loss halves, the second stays
        method.backward(torch.tensor(epoch_losses, requires_grad=True), torch.ones(2), None)
        method.on_epoch_end()
    fresh = build_method("dwa", {}, n_objectives=2)
    fresh.load_state_dict(_round_trip(method.state_dict()))
    grads = []
    for m in (method, fresh):
        probe = torch.ones(2, requires_grad=True)
        m.backward(probe, torch.ones(2), None)
        grads.append(probe.grad)
    assert torch.equal(grads[0], grads[1])
    assert grads[0][0] < grads[0][1]  # the slower task gets the larger weight


@pytest.mark.parametrize("name", ["gradnorm", "famo", "gradvac", "pcgrad"])
def test_a_checkpoint_from_before_extra_state_still_loads(name, data):
    """Runs checkpointed before methods kept extra state resume (with the method's fresh
    state for what the checkpoint lacks, as they did then)."""
    trainer = Trainer(_config(name), data=data, progress=False)
    trainer.train_epochs(1)
    state = _round_trip(trainer.state_dict())
    old = {k: v for k, v in state["method"].items() if k != "_extra_state"}
    if name == "gradvac":  # GradVac's EMA targets were a buffer then, under both its paths
        (phi,) = [s["phi"] for s in state["method"]["_extra_state"].values()]
        for path in ("aggregator.weighting.weighting", "aggregator.gramian_weighting"):
            old[f"{path}._phi_t"] = phi
    fresh = Trainer(_config(name), data=data, progress=False)
    fresh.load_state_dict({**state, "method": old})
    if name in ("gradvac", "pcgrad"):  # nothing was lost: these continue exactly
        _equal(_attributes(trainer.method), _attributes(fresh.method), name)
    fresh.train_epochs(1)


def test_state_that_cannot_be_checkpointed_is_announced():
    from torchjd import Stateful
    from torchjd.aggregation import GramianWeightedAggregator, MeanWeighting

    from scalarize.methods.jacobian import JacobianMethod

    class Remembering(MeanWeighting, Stateful):
        def reset(self) -> None:
            pass

    with pytest.warns(UserWarning, match="Remembering keeps state that scalarize does not "
                                         "checkpoint"):
        JacobianMethod(GramianWeightedAggregator(Remembering()))


@pytest.mark.parametrize("name", ["excess_mtl", "pcd", "cr_mogm", "modo", "sdmgrad"])
def test_the_newer_stateful_methods_are_announced_as_nothing(name):
    """torchjd 0.18's stateful weightings all have a handler: building them warns of nothing."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_method(name, {}, n_objectives=3)


def test_the_trainer_rolls_dwa_history_every_epoch(data):
    """DWA weights from the last two epochs' mean losses: the trainer must end each epoch."""
    trainer = Trainer(_config("dwa", epochs=3), data=data, progress=False)
    trainer.fit()
    assert len(trainer.method.scalarizer._previous_averages) == 2
