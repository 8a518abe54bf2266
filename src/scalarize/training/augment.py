"""Batch augmentation on tensors, on the batch's device: random crop with zero padding and
horizontal flip, drawn per image from the (seeded, checkpointed) torch RNG, so it runs on the
GPU with the step and a resumed run sees the same augmentations.

Example:
    >>> x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    >>> _ = torch.manual_seed(0)
    >>> Augment(padding=1, flip=True)(x).shape
    torch.Size([2, 1, 4, 4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Augment:
    """``padding`` pixels of zero padding then a random crop back to size; random left-right
    flip with probability 0.5 when ``flip``."""

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.padding > 0:
            p = self.padding
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            dx = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # n × h
            cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # n × w
            index = torch.arange(n, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2)
        if self.flip:
            flip = (torch.rand(n) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous()
