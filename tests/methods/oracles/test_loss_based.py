"""Oracles for the methods that weight the losses (static, loss-based and preference
scalarizations): the gradient a method sends to the losses is the weights its paper defines,
and for the stateful ones the tiny model's trajectory (1 and 10 SGD steps) equals a reference
loop written from the paper. Tolerance 1e-10 (the same arithmetic in float64) unless stated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from scalarize.methods import build_method
from tests.methods.oracles._problems import DTYPE, Tiny, flat, train_method

COVERED = {"static", "geometric_mean", "stch", "pbi", "cosmos", "rlw", "uw", "imtl_l", "dwa",
           "famo"}

LOSSES = torch.tensor([0.7, 2.0, 1.3], dtype=DTYPE)
PREFERENCE = torch.tensor([0.5, 0.2, 0.3], dtype=DTYPE)


def _loss_gradient(name: str, options: dict | None = None) -> torch.Tensor:
    losses = LOSSES.clone().requires_grad_(True)
    build_method(name, options or {}, 3).backward(losses, PREFERENCE, None)
    assert losses.grad is not None
    return losses.grad


def _reference_gradient(scalar: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    losses = LOSSES.clone().requires_grad_(True)
    scalar(losses).backward()
    assert losses.grad is not None
    return losses.grad


def test_static_is_the_weighted_sum():
    assert torch.allclose(_loss_gradient("static"), PREFERENCE, atol=1e-12)


def test_geometric_mean_of_the_losses():
    g = LOSSES.prod() ** (1 / 3)
    assert torch.allclose(_loss_gradient("geometric_mean"), g / (3 * LOSSES), atol=1e-10)


def test_stch_smooth_tchebycheff_mu_0_1_ideal_point_0():
    # μ log Σ exp(p_t L_t / μ) (Lin et al. 2024, Eq. 7) with z = 0
    expected = _reference_gradient(lambda x: 0.1 * torch.logsumexp(PREFERENCE * x / 0.1, 0))
    assert torch.allclose(_loss_gradient("stch"), expected, atol=1e-10)


def test_pbi_theta_5():
    # d₁ = Lᵀp̂, d₂ = ‖L − d₁ p̂‖, PBI = d₁ + θ d₂ (Zhang & Li 2007)
    def pbi(x: torch.Tensor) -> torch.Tensor:
        unit = PREFERENCE / PREFERENCE.norm()
        d1 = x @ unit
        return d1 + 5.0 * (x - d1 * unit).norm()

    assert torch.allclose(_loss_gradient("pbi"), _reference_gradient(pbi), atol=1e-10)


def test_cosmos_lambda_1():
    # Σ p_t L_t − λ cos(p, L) (Ruchte & Grabocka 2021, Eq. 4)
    def cosmos(x: torch.Tensor) -> torch.Tensor:
        return PREFERENCE @ x - torch.nn.functional.cosine_similarity(PREFERENCE, x, dim=0)

    assert torch.allclose(_loss_gradient("cosmos"), _reference_gradient(cosmos), atol=1e-10)


def test_rlw_weights_are_a_softmax_of_normals_in_distribution():
    # RLW (Lin et al. 2021): λ = softmax(z), z ~ N(0, I) afresh each step (LibMTL's default)
    torch.manual_seed(0)
    method = build_method("rlw", {}, 3)
    draws = []
    for _ in range(400):
        losses = LOSSES.clone().requires_grad_(True)
        method.backward(losses, PREFERENCE, None)
        draws.append(losses.grad.clone())
    got = torch.stack(draws)
    reference = torch.softmax(torch.randn(4000, 3, generator=torch.Generator().manual_seed(1),
                                          dtype=DTYPE), dim=1)
    assert torch.allclose(got.sum(dim=1), torch.ones(400, dtype=DTYPE), atol=1e-12)
    for t in range(3):  # each weight's distribution (Kolmogorov-Smirnov, α = 0.001)
        assert ks_2samp(got[:, t].numpy(), reference[:, t].numpy()).pvalue > 1e-3


# --- stateful: the trajectory of the tiny model (model and method parameters by plain SGD) -----

LR = 0.05


def _reference(scalar: Callable[[torch.Tensor, list[torch.Tensor], int], torch.Tensor],
               extra: list[torch.Tensor], steps: int,
               after: Callable[[Tiny, torch.Tensor], None] | None = None) -> Tiny:
    """SGD on the tiny model and ``extra`` (the method's own parameters) of
    ``scalar(losses, extra, step)``; ``after(model, losses_before)`` runs after each step."""
    model = Tiny()
    params = [*model.parameters(), *extra]
    for step in range(steps):
        _, losses = model.losses()
        grads = torch.autograd.grad(scalar(losses, extra, step), params, allow_unused=True,
                                    materialize_grads=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= LR * g
        if after is not None:
            after(model, losses.detach())
    return model


@pytest.mark.parametrize("steps", [1, 10])
def test_uw_log_variances_start_at_libmtls_minus_half_on_request(steps):
    s = torch.full((3,), -0.5, dtype=DTYPE, requires_grad=True)
    model, method = train_method("uw", steps, {"init_log_var": -0.5}, lr=LR)
    expected = _reference(lambda x, e, _: (0.5 * torch.exp(-e[0]) * x + 0.5 * e[0]).sum(),
                          [s], steps)
    assert torch.allclose(flat(model.parameters()), flat(expected.parameters()), atol=1e-10)
    assert torch.allclose(flat(method.parameters()).to(DTYPE), s.detach(), atol=1e-6)


@pytest.mark.parametrize("steps", [1, 10])
def test_uw_log_variances_start_at_0(steps):
    # Kendall et al. 2018 with s = log σ²: Σ ½ e^{-s_t} L_t + ½ s_t (the paper's regression form,
    # as LibMTL); s starts at 0 (σ² = 1; LibMTL starts it at −0.5)
    s = torch.zeros(3, dtype=DTYPE, requires_grad=True)
    model, _ = train_method("uw", steps, lr=LR)
    expected = _reference(lambda x, e, _: (0.5 * torch.exp(-e[0]) * x + 0.5 * e[0]).sum(),
                          [s], steps)
    assert torch.allclose(flat(model.parameters()), flat(expected.parameters()), atol=1e-10)


@pytest.mark.parametrize("steps", [1, 10])
def test_imtl_l_scales(steps):
    # IMTL-L (Liu et al. 2021): Σ e^{s_t} L_t − s_t, s learnt by the same optimiser, s₀ = 0
    s = torch.zeros(3, dtype=DTYPE, requires_grad=True)
    model, _ = train_method("imtl_l", steps, lr=LR)
    expected = _reference(lambda x, e, _: (torch.exp(e[0]) * x - e[0]).sum(), [s], steps)
    assert torch.allclose(flat(model.parameters()), flat(expected.parameters()), atol=1e-10)


@pytest.mark.parametrize("steps", [1, 10])
def test_dwa_temperature_2(steps):
    # DWA (Liu et al. 2019): λ_t = T softmax(r/τ)_t with r_t = L_t(e−1) / L_t(e−2), τ = 2, and
    # λ = 1 for the first two epochs; here every step is an epoch (on_epoch_end after each)
    history: list[torch.Tensor] = []

    def dwa(x: torch.Tensor, e: list[torch.Tensor], step: int) -> torch.Tensor:
        if len(history) < 2:
            weights = torch.ones(3, dtype=DTYPE)
        else:
            weights = 3 * torch.softmax(history[-1] / history[-2] / 2.0, dim=0)
        history.append(x.detach().clone())
        return weights @ x

    model, _ = train_method("dwa", steps, lr=LR, epoch_every_step=True)
    expected = _reference(dwa, [], steps)
    assert torch.allclose(flat(model.parameters()), flat(expected.parameters()), atol=1e-10)


@pytest.mark.parametrize("steps", [1, 10])
def test_famo(steps):
    # FAMO (Liu et al. 2023, Alg. 1; l* = 0): loss Σ z_t log(L_t + ε) / c, z = softmax(ξ),
    # c = Σ z_t / (L_t + ε) (detached); after the step ξ moves by Adam (lr 0.025, weight decay
    # 1e-3) along −(∂z/∂ξ)ᵀ δ, δ = log L_before − log L_after
    xi = torch.zeros(3, dtype=DTYPE, requires_grad=True)
    adam = torch.optim.Adam([xi], lr=0.025, weight_decay=1e-3)
    eps = 1e-8

    def famo(x: torch.Tensor, e: list[torch.Tensor], step: int) -> torch.Tensor:
        z = torch.softmax(xi, 0).detach()
        c = (z / (x + eps)).sum().detach()
        return (torch.log(x + eps) * z / c).sum()

    def after(model: Tiny, before: torch.Tensor) -> None:
        with torch.no_grad():
            now = model.losses()[1]
        delta = torch.log(before + eps) - torch.log(now + eps)
        (grad,) = torch.autograd.grad(torch.softmax(xi, 0), xi, grad_outputs=delta)
        adam.zero_grad()
        xi.grad = grad
        adam.step()

    model, method = train_method("famo", steps, lr=LR)
    expected = _reference(famo, [], steps, after)
    assert torch.allclose(flat(model.parameters()), flat(expected.parameters()), atol=1e-9)
    learnt = np.asarray(next(method.parameters()).detach())
    assert np.allclose(learnt, xi.detach().numpy(), atol=1e-9)
