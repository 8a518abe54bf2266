"""Batches straight from in-memory uint8 arrays: index, move to the device, normalise.

No ``DataLoader``: the images already sit in memory as uint8, so a batch is one gather, one copy
and one fused normalisation, which keeps the data path far below the cost of a training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scalarize.benchmarks.base import Split


@dataclass
class Batch:
    """Normalised float images, int64 labels per task, and domain indices (or ``None``)."""

    x: torch.Tensor
    labels: dict[str, torch.Tensor]
    domain: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.x.shape[0])


def channel_stats(x: np.ndarray, max_images: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in [0, 1] units) from at most ``max_images`` images."""
    sample = x[:max_images].astype(np.float32) / 255.0
    mean = sample.mean(axis=(0, 2, 3))
    std = sample.std(axis=(0, 2, 3)) + 1e-6
    return mean, std


class TensorSplit:
    """A :class:`Split` as torch tensors, served as normalised batches on ``device``."""

    def __init__(self, split: Split, device: torch.device, mean: np.ndarray, std: np.ndarray
                 ) -> None:
        self.device = device
        # a read-only array (a memory-mapped cache) is copied: torch needs writable memory
        self.x = torch.from_numpy(np.require(split.x, requirements=["C", "W"]))
        self.labels = {k: torch.from_numpy(v) for k, v in split.labels.items()}
        self.domain = None if split.domain is None else torch.from_numpy(split.domain)
        self.domain_np = split.domain
        shape = (1, -1, 1, 1)
        self.scale = torch.as_tensor(1.0 / (255.0 * std), device=device).view(shape)
        self.shift = torch.as_tensor(-mean / std, device=device).view(shape)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self, index: torch.Tensor | slice) -> Batch:
        """The examples at ``index``, normalised, on the device."""
        device = self.device
        x = self.x[index].to(device, non_blocking=True).float()
        x = torch.addcmul(self.shift, x, self.scale)
        labels = {k: v[index].to(device, non_blocking=True) for k, v in self.labels.items()}
        domain = (None if self.domain is None
                  else self.domain[index].to(device, non_blocking=True))
        return Batch(x=x, labels=labels, domain=domain)

    def sequential(self, batch_size: int):
        """Batches in order, for evaluation."""
        for start in range(0, len(self), batch_size):
            yield self.batch(slice(start, start + batch_size))
