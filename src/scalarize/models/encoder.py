"""The encoder contract: a module mapping images to ``out_features`` features per image, and,
for dense heads, to a feature map (B × ``out_features`` × h × w)."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """Base of the model families' encoders (ViT, ResNet)."""

    out_features: int

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Features laid out spatially, for dense heads."""
        raise NotImplementedError(f"{type(self).__name__} has no feature map")
