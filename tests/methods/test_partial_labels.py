"""Methods on batches where an objective has no example (partial labels, ``StepContext.counts``):
Jacobian methods skip its row (stateful aggregators keep it, as a zero row), MGDA-UB solves over
the present ones, torchjd scalarizers get its carried last loss, GradNorm holds its weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalarize.methods import StepContext, build_method


class _Toy(nn.Module):
    """A shared layer and one linear head per objective; the losses of a fixed batch."""

    def __init__(self, n: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shared = nn.Linear(4, 5)
        self.x = torch.randn(6, 4)
        self.heads = nn.ModuleList(nn.Linear(5, 1) for _ in range(n))

    def step(self, counts: list[float], step: int = 0) -> tuple[torch.Tensor, StepContext]:
        features = self.shared(self.x).relu()
        losses = torch.stack([head(features).pow(2).mean() for head in self.heads])
        present = torch.tensor(counts) > 0
        losses = losses * present  # what the objectives give an absent objective: 0
        ctx = StepContext(self, list(self.shared.parameters()), features, step,
                          torch.tensor(counts))
        return losses, ctx


def _rows_seen(method) -> list[int]:
    rows: list[int] = []
    method.aggregator.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    return rows


def test_a_stateless_aggregator_skips_the_absent_row():
    toy, method = _Toy(), build_method("upgrad", n_objectives=3)
    rows = _rows_seen(method)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.full((3,), 1 / 3), ctx)
    alone = _Toy(2)  # the same update as a run without the absent objective
    alone.heads[1].load_state_dict(toy.heads[2].state_dict())
    losses2, ctx2 = alone.step([4.0, 2.0])
    build_method("upgrad", n_objectives=2).backward(losses2, torch.full((2,), 0.5), ctx2)
    assert rows == [2]
    assert torch.allclose(toy.shared.weight.grad, alone.shared.weight.grad)
    assert not toy.heads[1].weight.grad.any()


@pytest.mark.parametrize("name", ["upgrad", "nash_mtl", "cr_mogm", "modo", "sdmgrad"])
def test_no_objective_in_the_batch_leaves_no_gradient(name):
    """Also for stateful methods (Nash-MTL's solver failed on an all-zero Jacobian)."""
    toy, method = _Toy(), build_method(name, n_objectives=3)
    losses, ctx = toy.step([0.0, 0.0, 0.0])
    assert method.backward(losses, torch.full((3,), 1 / 3), ctx).item() == 0.0
    assert all(p.grad is None for p in toy.parameters())


def test_cr_mogm_weighs_the_present_objectives():
    """MGDA, given the absent objective's zero row, put all its weight there (no update);
    CR-MOGM's base solves over the present ones: its first step is MGDA without that row."""
    toy, method = _Toy(), build_method("cr_mogm", n_objectives=3)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.full((3,), 1 / 3), ctx)
    alone = _Toy()
    losses2, ctx2 = alone.step([4.0, 0.0, 2.0])
    build_method("mgda", n_objectives=3).backward(losses2, torch.full((3,), 1 / 3), ctx2)
    assert toy.shared.weight.grad.any()
    assert torch.allclose(toy.shared.weight.grad, alone.shared.weight.grad, atol=1e-6)


def test_a_stateful_aggregator_keeps_every_row():
    toy, method = _Toy(), build_method("gradvac", n_objectives=3)
    rows = _rows_seen(method)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.full((3,), 1 / 3), ctx)
    assert rows == [3]  # its state is sized by the objectives
    assert torch.isfinite(toy.shared.weight.grad).all()


def test_mgda_ub_solves_over_the_present_objectives():
    toy, method = _Toy(), build_method("mgda_ub", n_objectives=3)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.full((3,), 1 / 3), ctx)
    assert torch.isfinite(toy.shared.weight.grad).all()
    assert not toy.heads[1].weight.grad.any()


def test_scalarizers_get_the_carried_last_loss():
    toy, method = _Toy(), build_method("dwa", n_objectives=3)
    seen: list[list[float]] = []
    method.scalarizer.register_forward_pre_hook(lambda m, args: seen.append(args[0].tolist()))
    losses, ctx = toy.step([0.0, 4.0, 2.0])  # objective 0 never seen yet: the present mean
    method.backward(losses, torch.ones(3), ctx)
    first = losses.detach().tolist()
    toy.zero_grad()
    losses, ctx = toy.step([4.0, 4.0, 2.0])
    method.backward(losses, torch.ones(3), ctx)
    full = losses.detach().tolist()
    toy.zero_grad()
    losses, ctx = toy.step([4.0, 0.0, 0.0])
    method.backward(losses, torch.ones(3), ctx)
    mean = (first[1] + first[2]) / 2
    assert seen[0] == pytest.approx([mean, first[1], first[2]], rel=1e-6)
    assert seen[1] == full
    assert seen[2] == [losses[0].item(), full[1], full[2]]
    restored = build_method("dwa", n_objectives=3)
    restored.load_state_dict(method.state_dict())  # the carried losses are checkpointed
    assert torch.equal(restored._last, method._last)


def test_famo_sees_no_move_of_an_absent_objective():
    toy, method = _Toy(), build_method("famo", n_objectives=3)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.ones(3), ctx)
    method.after_step(lambda: toy.step([4.0, 0.0, 2.0])[0].detach())
    assert torch.isfinite(method.scalarizer._w).all()
    assert torch.isfinite(method.scalarizer._w.grad if method.scalarizer._w.grad is not None
                          else torch.zeros(1)).all()


def test_gradnorm_holds_its_weights_when_a_task_is_absent():
    toy, method = _Toy(), build_method("gradnorm", n_objectives=3)
    losses, ctx = toy.step([4.0, 0.0, 2.0])
    method.backward(losses, torch.ones(3), ctx)
    assert torch.equal(method.log_w, torch.zeros(3))
    assert method.initial[1] == 0 and (method.initial[[0, 2]] > 0).all()
    toy.zero_grad()
    losses, ctx = toy.step([4.0, 4.0, 2.0], step=1)
    method.backward(losses, torch.ones(3), ctx)
    assert method.initial[1] == losses[1].detach()  # its first seen loss
    assert not torch.equal(method.log_w, torch.zeros(3))
