"""A small Vision Transformer whose capacity (depth, width, heads, patch) is a knob.

Written here rather than taken from timm (which cannot be imported on CPU-only torch builds, see
DESIGN.md). Pre-norm blocks, learned position embeddings, mean pooling over patch tokens, and
``scaled_dot_product_attention`` so the fused kernels run on GPU.

Example:
    >>> import torch
    >>> encoder = ViT(image_size=32, patch=4, depth=3, width=48, heads=3)
    >>> encoder(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 48])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder

MAX_DEPTH = 1000


class Attention(nn.Module):
    """Multi-head self-attention."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: attention then MLP, each with a residual connection."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(Encoder):
    """ViT encoder mapping N×C×H×W images to N×width features."""

    def __init__(self, image_size: int, patch: int, depth: int, width: int, heads: int,
                 in_channels: int = 3, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        knobs = {"depth": depth, "width": width, "patch": patch, "heads": heads,
                 "image size": image_size, "channels": in_channels}
        for knob, value in knobs.items():
            if value < 1:
                raise ScalarizeError(f"ViT {knob} is {value}; it must be at least 1")
        if depth > MAX_DEPTH:
            raise ScalarizeError(f"ViT depth {depth} is more than {MAX_DEPTH} blocks")
        if patch > image_size:
            raise ScalarizeError(f"ViT patch {patch} is larger than the {image_size}-pixel "
                                 "image; choose a patch that divides the image size")
        if image_size % patch:
            raise ScalarizeError(
                f"image size {image_size} is not divisible by the patch size {patch}; "
                "choose a patch that divides it"
            )
        if width % heads:
            raise ScalarizeError(f"width {width} is not divisible by {heads} heads")
        self.out_features = width
        self.patch_embed = nn.Conv2d(in_channels, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, (image_size // patch) ** 2, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.apply(_init_weights)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """N×(patches)×width normalised patch tokens."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x).mean(dim=1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The patch tokens laid out as an N×width×(H/patch)×(W/patch) map (for dense heads)."""
        side = x.shape[-2] // self.patch_embed.stride[0]
        tokens = self.tokens(x)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, side, tokens.shape[1] // side)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
