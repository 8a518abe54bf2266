"""Batch augmentation on tensors, on the batch's device: random crop with zero padding and
horizontal flip, drawn per image from the (seeded, checkpointed) torch RNG, so it runs on the
GPU with the step and a resumed run sees the same augmentations. Dense targets flip with their
images (each through its task kind's ``flip``: surface normals also negate their x axis);
cropping with padding is for per-image labels only.

Example:
    >>> x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    >>> _ = torch.manual_seed(0)
    >>> Augment(padding=1, flip=True)(x)[0].shape
    torch.Size([2, 1, 4, 4])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F


class Augment:
    """``padding`` pixels of zero padding then a random crop back to size; random left-right
    flip with probability 0.5 when ``flip``."""

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, x: torch.Tensor,
                 targets: Mapping[str, tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]
                 | None = None, span: tuple[int, int, int] | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Augmented ``x`` and ``targets`` (name -> (dense target, its flip)), flipped with
        their images. ``span`` (start, stop, size): ``x`` is that slice of a batch of ``size``
        (one process's of several), which gets the draws the whole batch would."""
        targets = targets or {}
        assert not (targets and self.padding), "dense targets are flipped, never cropped"
        n, _, h, w = x.shape
        start, stop, size = span if span is not None else (0, n, n)
        if self.padding > 0:
            p = self.padding
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (size,))[start:stop].to(x.device)
            dx = torch.randint(0, 2 * p + 1, (size,))[start:stop].to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # n × h
            cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # n × w
            index = torch.arange(n, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2)
        moved = {name: target for name, (target, _) in targets.items()}
        if self.flip:
            flip = (torch.rand(size)[start:stop] < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            for name, (target, flipped) in targets.items():
                chosen = flip.view(-1, *[1] * (target.ndim - 1))
                moved[name] = torch.where(chosen, flipped(target), target)
        return x.contiguous(), moved
