"""``seq-d<depth>-w<width>[-h<heads>]``: a small transformer over sequences, whose capacity
(depth: blocks, width: model dimension) is the knob a capacity sweep turns.

Token ids (B×L int64, a vocabulary of ``vocab_size``) are embedded, float sequences (B×L×F)
projected linearly, to ``width``; a learned position embedding is added, ``depth`` pre-norm
transformer blocks (the ViT's, :class:`~scalarize.models.vit.Block`) follow, and the
normalised tokens are mean-pooled into ``out_features = width`` features. Heads default to
width / 16 (at least 1).

Example:
    >>> import torch
    >>> encoder = sequence("-d2-w32", input_shape=(12,), vocab_size=50)
    >>> encoder(torch.zeros(3, 12, dtype=torch.long)).shape
    torch.Size([3, 32])
    >>> sequence("-d1-w16-h2", input_shape=(12, 5))(torch.zeros(3, 12, 5)).shape
    torch.Size([3, 16])
"""

from __future__ import annotations

import re

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder
from scalarize.models.vit import MAX_DEPTH, Block, _init_weights

_SEQ = re.compile(r"^-d([0-9]+)-w([0-9]+)(?:-h([0-9]+))?$")


class SequenceEncoder(Encoder):
    """Embedding (``vocab_size`` given) or linear projection of ``features`` per position,
    position embeddings for ``length`` positions, ``depth`` transformer blocks, mean pooling."""

    def __init__(self, length: int, depth: int, width: int, heads: int, *,
                 vocab_size: int | None = None, features: int | None = None) -> None:
        super().__init__()
        knobs = {"depth": depth, "width": width, "heads": heads, "length": length}
        for knob, value in knobs.items():
            if value < 1:
                raise ScalarizeError(f"sequence model {knob} is {value}; it must be at least 1")
        if depth > MAX_DEPTH:
            raise ScalarizeError(f"sequence model depth {depth} is more than {MAX_DEPTH} blocks")
        if width % heads:
            raise ScalarizeError(f"width {width} is not divisible by {heads} heads")
        self.out_features = width
        self.embed: nn.Module = (nn.Embedding(vocab_size, width) if vocab_size is not None
                                 else nn.Linear(int(features or 1), width))
        self.pos_embed = nn.Parameter(torch.zeros(1, length, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x).mean(dim=1)


def sequence(knobs: str = "", *, input_shape: tuple[int, ...],
             vocab_size: int | None = None) -> SequenceEncoder:
    """The ``seq`` family: ``knobs`` is ``-d<depth>-w<width>[-h<heads>]``; ``input_shape`` is
    ``(L,)`` with ``vocab_size`` (token ids) or ``(L, F)`` (float sequences)."""
    match = _SEQ.match(knobs)
    if not match:
        raise ScalarizeError(f"cannot read sequence spec 'seq{knobs}'; write "
                             "seq-d<depth>-w<width>[-h<heads>], e.g. seq-d2-w32")
    depth, width = int(match.group(1)), int(match.group(2))
    heads = int(match.group(3)) if match.group(3) else max(1, width // 16)
    if vocab_size is not None and len(input_shape) == 1:
        return SequenceEncoder(input_shape[0], depth, width, heads, vocab_size=vocab_size)
    if vocab_size is None and len(input_shape) == 2:
        return SequenceEncoder(input_shape[0], depth, width, heads, features=input_shape[1])
    raise ScalarizeError(f"seq{knobs} takes sequences (L token ids, or L×F floats); these "
                         f"inputs have shape {tuple(input_shape)} each: use "
                         "mlp-d<depth>-w<width> for tabular features")


__all__ = ["SequenceEncoder", "sequence"]
