"""MoDo and SDMGrad: task weights from the product of two independent mini-batches' Jacobians.

Both methods (Chen et al. 2023, MoDo; Xiao et al. 2023, SDMGrad) update their task weights λ
from A = J₁ J₂ᵀ, where J₁ and J₂ are the Jacobians of the task losses on the shared parameters
measured on two *independent* mini-batches (one batch would bias the stochastic estimate that
their guarantees rest on). torchjd gives the weightings (``MoDoWeighting``,
``SDMGradWeighting``); the caller draws the batches.

scalarize hands a method one batch per step, so the batch is split in two halves, which are two
independent mini-batches of half the size: the gradient of each task's loss on the shared
features is masked to one half and backpropagated through the encoder (one ``jac`` call with
2T rows), and each half's Jacobian is rescaled to the mean over its own examples (those that
count for the objective: ``StepContext.mask``, so partial labels and domains are counted). The
shared
parameters then move along Σ λ_t g_t with g_t the full batch's gradient (the mean of the two
halves: the two-batch variant of the papers, Eq. 2.9b of MoDo). The heads: ``heads=plain``
(the default) moves head t along its own ∇L_t, as both official codes do (MoDo's, and LibMTL's
port, back-propagate each loss into the decoders unweighted; SDMGrad's back-propagates each
task's loss before overwriting the shared gradient); ``heads=weighted`` moves it along
λ_t ∇L_t, the papers' update of all parameters along the weighted gradient (and torchjd's
usage examples, ``losses.backward(weights)``). This is exact when the encoder treats
examples independently (ViT, MLP: LayerNorm); with BatchNorm (ResNet) the halves share the
batch statistics, so they are only nearly independent. The cost is 2T backward passes through
the encoder per step (the Jacobian methods take T).

A model with task-specific paths (features per objective) is handled the same way: each
objective's gradient at every feature tensor is masked to one half, and one ``jac`` call over
all the feature tensors gives the Jacobians of the shared parameters; the task-specific
parameters, as the heads, get their own loss's gradient.

Partial labels: both weightings keep state sized by the objectives (torchjd's ``Stateful``), so,
as for the stateful Jacobian methods, an objective absent from the batch keeps its row, a zero
one; a batch without any objective leaves every ``.grad`` unset and the weights' state as it was.

MoDo takes no preference; SDMGrad pulls the direction towards Σ w̃_t g_t for a preference w̃,
which is the run's scalarization weights at each step (so SDMGrad uses the weights).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torchjd.aggregation import MoDoWeighting, SDMGradWeighting, Weighting
from torchjd.autojac import jac

from scalarize.errors import ScalarizeError
from scalarize.methods.base import StepContext
from scalarize.methods.jacobian import check_heads, head_params, weighted_head_backward
from scalarize.methods.state import TorchjdMethod, place, prepare


class HalfBatchMethod(TorchjdMethod):
    """Weights λ = ``weighting(J₁ J₂ᵀ)`` from the batch's two halves; the shared parameters'
    gradient is Σ λ_t g_t over the whole batch, the heads' that of their own loss (``plain``) or
    λ_t times it (``weighted``). On several processes the halves are the global batch's: each
    process's rows of J₁ and J₂ are summed over the processes before λ is solved for."""

    distributes: ClassVar[bool | str] = True

    def __init__(self, weighting: Weighting, heads: str = "plain") -> None:
        super().__init__()
        check_heads(heads, type(self).__name__)
        self.heads = heads
        self.weighting = weighting
        prepare(weighting)

    def wrapped(self) -> Weighting:
        return self.weighting

    def set_preference(self, weights: torch.Tensor) -> None:
        """Hand the step's scalarization weights to the weighting (only SDMGrad takes them)."""

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        features = ctx.feature_tensors()  # the shared one, or each objective's own
        shard = ctx.shard
        local = features[0].shape[0]
        size = local if shard is None else shard.size
        if size < 2:
            raise ScalarizeError(f"{type(self).__name__} splits each batch in two halves; a "
                                 f"batch of {size} example cannot be split: raise "
                                 "train.batch_size")
        present = ctx.present()
        if present is not None and not present:  # no objective has an example: no step
            return torch.dot(weights.to(losses.dtype), losses.detach())
        place(self.weighting, losses.device)
        self.set_preference(weights)
        task_grads = [torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True,
                                          materialize_grads=True)
                      for loss in losses.unbind()]
        if self.heads == "plain":
            self._head_backward(losses, ctx)

        half = size // 2
        device = features[0].device
        if shard is None:
            first = torch.zeros(size, dtype=torch.bool, device=device)
            first[:half] = True
        else:  # this process's examples' places in the global batch
            first = torch.arange(local, device=device) + shard.span()[0] < half
        rows = []  # per feature tensor: [2T, *features]
        for k, tensor in enumerate(features):
            shape = (local,) + (1,) * (tensor.dim() - 1)
            masks = [first.view(shape), ~first.view(shape)]
            rows.append(torch.stack([g[k] * m for m in masks for g in task_grads]))
        jacobians = jac(features, ctx.shared_params, jac_outputs=rows, retain_graph=True,
                        parallel_chunk_size=None if losses.device.type == "cuda" else 1)
        # float32 for the weighting's solver, also when autocast made the features bf16
        matrix = torch.cat([j.flatten(1) for j in jacobians], dim=1).float()
        if shard is not None:
            matrix = shard.all_reduce(matrix)
        n = len(task_grads)
        part_1, part_2 = matrix[:n], matrix[n:]  # each half's share of the batch mean
        # per-half means: scale each objective's share by its examples in the batch / in the half
        if ctx.mask is None:
            a = (part_1 * (size / half)) @ (part_2 * (size / (size - half))).T
        else:
            if shard is None:
                in_1, in_2 = (ctx.mask[:, :half].sum(dim=1).to(matrix),
                              ctx.mask[:, half:].sum(dim=1).to(matrix))
            else:
                in_1, in_2 = shard.all_reduce(torch.stack(
                    [ctx.mask[:, first].sum(dim=1), ctx.mask[:, ~first].sum(dim=1)]).to(matrix))
            scale_1 = ((in_1 + in_2) / in_1.clamp(min=1)).unsqueeze(1)
            scale_2 = ((in_1 + in_2) / in_2.clamp(min=1)).unsqueeze(1)
            a = (part_1 * scale_1) @ (part_2 * scale_2).T
        lam = self.weighting(a.detach()).to(matrix.dtype)
        direction = lam @ (part_1 + part_2)
        if self.heads == "weighted":
            weighted_head_backward(list(losses.unbind()), lam, ctx)
        offset = 0
        for param in ctx.shared_params:
            count = param.numel()
            grad = direction[offset:offset + count].view_as(param).to(param.dtype)
            if shard is not None:  # global: counted once by the trainer's sum
                grad = shard.keep(grad)
            param.grad = grad if param.grad is None else param.grad + grad
            offset += count
        return torch.dot(weights.to(losses.dtype), losses.detach())

    @staticmethod
    def _head_backward(losses: torch.Tensor, ctx: StepContext) -> None:
        """Each head's parameters get the gradient of the losses that reach them (their own),
        as do a per-task model's task-specific parameters."""
        heads = head_params(ctx)
        if heads:
            torch.autograd.backward(losses.sum(), inputs=heads, retain_graph=True)


class MoDo(HalfBatchMethod):
    """MoDo's projected-gradient λ update; it chooses its own weights."""

    uses_weights: ClassVar[bool] = False


class SDMGrad(HalfBatchMethod):
    """SDMGrad, pulled towards the direction of the run's weighted gradient."""

    uses_weights: ClassVar[bool] = True
    weighting: SDMGradWeighting

    def set_preference(self, weights: torch.Tensor) -> None:
        self.weighting.pref_vector = weights.detach()


def modo(n_objectives: int, gamma: float = 0.1, rho: float = 0.1, heads: str = "plain") -> MoDo:
    """MoDo with λ step ``gamma`` and regularisation ``rho`` (torchjd's defaults; LibMTL's γ is
    1e-3). The shared step is Σ λ_t of the two halves' *mean* gradient (the paper's); the
    official code steps along their sum, twice as long."""
    return MoDo(MoDoWeighting(gamma=gamma, rho=rho), heads=heads)


def sdmgrad(n_objectives: int, lr: float = 10.0, momentum: float = 0.5, n_iter: int = 20,
            lambda_: float = 0.3, heads: str = "plain") -> SDMGrad:
    """SDMGrad with the inner solver's ``lr``, ``momentum`` and ``n_iter`` and the pull
    ``lambda_`` towards the preference direction (torchjd's defaults, the authors' 0.3). The
    inner projected SGD descends the paper's ½‖g_w + λ g₀‖² on A normalised by (mean √diag A)²;
    the official code descends ‖g_w + λ g₀‖², so its step at ``lr`` 10 is ours at ``lr`` 20."""
    return SDMGrad(SDMGradWeighting(lr=lr, momentum=momentum, n_iter=n_iter, lambda_=lambda_),
                   heads=heads)
