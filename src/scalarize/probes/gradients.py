"""Per-objective gradients of the shared parameters, and the conflict measures built on them.

Each objective's gradient of the shared parameters comes from its own backward pass, which runs
through that objective's head only (never through all T heads). On CUDA the T passes run as one
batched pass (``is_grads_batched``: autograd vmaps over the one-hot output gradients); on CPU a
plain loop is faster (1.2-7× in a one-off timing of both paths on three of this project's
models, batch 128, T = 4).
For each parameter group (a block or layer) only the T×T Gram matrix of the gradients is kept.
Every measure follows from the Gram matrices, and the whole encoder's Gram matrix is the sum
of its groups', so per-layer and whole-encoder values are consistent by construction.

On several processes (data parallel) each process's losses carry its share of the global
gradient (:mod:`scalarize.training.parallel`), so the per-objective gradients are summed over the
processes (:meth:`~scalarize.methods.shard.Shard.all_reduce`, as the Jacobian methods do) before
the Gram matrices: they are the global batch's, the same on every process.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scalarize.methods.shard import Shard


def parameter_groups(module: nn.Module, only: Sequence[nn.Parameter] | None = None,
                     nested: bool = False) -> dict[str, list[nn.Parameter]]:
    """Parameters grouped by block: ``blocks.3``/``stages.1`` for numbered containers, the
    top-level name otherwise (``patch_embed``, ``stem``, ``norm``); with ``only``, those among
    ``only`` (a per-task model's shared parameters). ``nested`` looks for the first numbered
    container at any depth (``resnet.stages.1`` inside MTAN, ``columns.a.stages.0`` inside
    Cross-stitch), as a per-task model wraps its shared blocks.

    Example:
        >>> net = nn.ModuleDict({"resnet": nn.ModuleDict({"stages": nn.Sequential(
        ...     nn.Linear(2, 2), nn.Linear(2, 2))})})
        >>> list(parameter_groups(net)), list(parameter_groups(net, nested=True))
        (['resnet'], ['resnet.stages.0', 'resnet.stages.1'])
    """
    kept = None if only is None else {id(p) for p in only}
    groups: dict[str, list[nn.Parameter]] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad or (kept is not None and id(param) not in kept):
            continue
        parts = name.split(".")
        if nested:
            index = next((i for i, part in enumerate(parts[1:-1], 1) if part.isdigit()), 0)
            key = ".".join(parts[:index + 1])
        else:
            key = ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]
        groups.setdefault(key, []).append(param)
    return groups


def per_objective_grads(losses: torch.Tensor, params: list[nn.Parameter],
                        batched: bool | None = None) -> tuple[torch.Tensor, ...]:
    """For each parameter, the stacked gradients of every loss (T × parameter shape).
    ``batched=None`` picks the batched pass on CUDA and the loop elsewhere."""
    n = losses.shape[0]
    if batched is None:
        batched = losses.device.type == "cuda"
    if batched:
        eye = torch.eye(n, device=losses.device, dtype=losses.dtype)
        try:
            grads = torch.autograd.grad(losses, params, grad_outputs=eye, retain_graph=True,
                                        is_grads_batched=True, allow_unused=True)
            return tuple(torch.zeros(n, *p.shape, device=p.device) if g is None else g
                         for g, p in zip(grads, params, strict=True))
        except RuntimeError:  # an op without a batching rule: fall back to the loop
            pass
    rows = [torch.autograd.grad(losses[i], params, retain_graph=True, allow_unused=True)
            for i in range(n)]
    return tuple(torch.stack([torch.zeros_like(p) if r[k] is None else r[k] for r in rows])
                 for k, p in enumerate(params))


def sum_over_processes(grads: tuple[torch.Tensor, ...], shard: Shard
                       ) -> tuple[torch.Tensor, ...]:
    """Each parameter's stacked per-objective gradients (T × parameter shape) summed over the
    processes, in one all-reduce of T × (shared parameters) numbers.

    Example (one process: the sum is the gradients themselves):
        >>> grads = (torch.ones(2, 3), torch.zeros(2, 1))
        >>> [g.shape for g in sum_over_processes(grads, Shard(0, 1))]
        [torch.Size([2, 3]), torch.Size([2, 1])]
    """
    if shard.world == 1 or not grads:
        return grads
    n = grads[0].shape[0]
    flat = shard.all_reduce(torch.cat([g.reshape(n, -1) for g in grads], dim=1))
    sizes = [g[0].numel() for g in grads]
    return tuple(part.reshape(g.shape) for part, g in
                 zip(flat.split(sizes, dim=1), grads, strict=True))


def gram_matrices(losses: torch.Tensor, groups: dict[str, list[nn.Parameter]],
                  batched: bool | None = None, shard: Shard | None = None
                  ) -> dict[str, torch.Tensor]:
    """``{group: G}`` with G[i, j] = ⟨∇L_i, ∇L_j⟩ over the group's parameters (float64); with
    ``shard``, of the gradients summed over the processes (the global batch's)."""
    params = [p for ps in groups.values() for p in ps]
    n = losses.shape[0]
    grads = per_objective_grads(losses, params, batched)
    if shard is not None:
        grads = sum_over_processes(grads, shard)
    out: dict[str, torch.Tensor] = {}
    start = 0
    for name, ps in groups.items():
        gram = torch.zeros(n, n, device=losses.device, dtype=torch.float64)
        for k in range(start, start + len(ps)):
            flat = grads[k].reshape(n, -1).double()
            gram += flat @ flat.T
        start += len(ps)
        out[name] = gram
    return out


def conflict_measures(gram: torch.Tensor, weights: torch.Tensor) -> dict[str, object]:
    """Measures from one Gram matrix and the step's scalarization weights.

    - ``cos``: pairwise cosine similarity matrix (T×T);
    - ``cos_mean``, ``cos_min``: over pairs i < j;
    - ``conflict_share``: share of pairs with negative cosine;
    - ``gms_mean``: gradient magnitude similarity 2‖g_i‖‖g_j‖ / (‖g_i‖² + ‖g_j‖²)
      (Yu et al. 2020), averaged over pairs;
    - ``norms``: ‖g_t‖ per objective;
    - ``cos_to_update``: cosine between each g_t and the scalarized update Σ_t w_t g_t.
    """
    gram = gram.double().cpu()
    w = weights.double().cpu()
    sq = gram.diagonal().clamp(min=0)
    norms = sq.sqrt()
    denom = (norms[:, None] * norms[None, :]).clamp(min=1e-30)
    cos = gram / denom
    t = gram.shape[0]
    iu = torch.triu_indices(t, t, offset=1)
    pair_cos = cos[iu[0], iu[1]]
    gms = 2 * norms[iu[0]] * norms[iu[1]] / (sq[iu[0]] + sq[iu[1]]).clamp(min=1e-30)
    update_dot = gram @ w
    update_norm = (w @ gram @ w).clamp(min=0).sqrt()
    cos_update = update_dot / (norms * update_norm).clamp(min=1e-30)
    has_pairs = pair_cos.numel() > 0
    return {
        "cos": cos.tolist(),
        "cos_mean": float(pair_cos.mean()) if has_pairs else float("nan"),
        "cos_min": float(pair_cos.min()) if has_pairs else float("nan"),
        "conflict_share": float((pair_cos < 0).double().mean()) if has_pairs else float("nan"),
        "gms_mean": float(gms.mean()) if has_pairs else float("nan"),
        "norms": norms.tolist(),
        "cos_to_update": cos_update.tolist(),
    }


def control_measures(gram: torch.Tensor, m: int) -> dict[str, object]:
    """The same-objective control from the Gram matrix of 2m gradients: objective t's gradient
    on one half (row t) and on the other half (row m + t) of its probe examples.

    - ``control_cos``: per objective, the cosine between its two halves' gradients;
    - ``control_cos_mean``: their mean;
    - ``control_share``: the share of objectives whose two halves disagree (negative cosine),
      the floor that sampling noise alone puts under ``conflict_share``.

    Example:
        >>> g = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0],
        ...                   [1.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 1.0]])
        >>> out = control_measures(g, 2)
        >>> out["control_cos"], out["control_share"]
        ([1.0, -1.0], 0.5)
    """
    gram = gram.double().cpu()
    diag = gram.diagonal().clamp(min=0)
    idx = torch.arange(m)
    denom = (diag[idx] * diag[idx + m]).sqrt().clamp(min=1e-30)
    cos = gram[idx, idx + m] / denom
    return {
        "control_cos": cos.tolist(),
        "control_cos_mean": float(cos.mean()) if m else float("nan"),
        "control_share": float((cos < 0).double().mean()) if m else float("nan"),
    }
