"""``mlp-d<depth>-w<width>``: a multi-layer perceptron for tabular features, whose capacity
(depth: hidden layers, width: units per layer) is the knob a capacity sweep turns.

Each hidden layer is Linear → LayerNorm → GELU; the encoder's features are the last hidden
layer's (``out_features = width``), the heads sit on them. Float sequences (L×F) and images
(C×H×W) are flattened first, so an MLP is also the plain baseline on them; token ids are not
features (use ``seq-d<depth>-w<width>``).

Example:
    >>> import torch
    >>> encoder = mlp("-d2-w32", input_shape=(64,))
    >>> encoder(torch.zeros(5, 64)).shape
    torch.Size([5, 32])
    >>> sum(p.numel() for p in mlp("-d1-w8", input_shape=(4,)).parameters())
    56
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder

MAX_DEPTH = 1000
_MLP = re.compile(r"^-d([0-9]+)-w([0-9]+)$")


class MLP(Encoder):
    """``depth`` hidden layers of ``width`` units over ``in_features`` inputs (a batch of any
    shape B×… is flattened to B×``in_features``)."""

    def __init__(self, in_features: int, depth: int, width: int) -> None:
        super().__init__()
        for knob, value in {"depth": depth, "width": width, "input size": in_features}.items():
            if value < 1:
                raise ScalarizeError(f"MLP {knob} is {value}; it must be at least 1")
        if depth > MAX_DEPTH:
            raise ScalarizeError(f"MLP depth {depth} is more than {MAX_DEPTH} layers")
        self.out_features = width
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), nn.LayerNorm(width),
                       nn.GELU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


def mlp(knobs: str = "", *, image_shape: tuple[int, int, int] | None = None,
        input_shape: tuple[int, ...] | None = None, vocab_size: int | None = None) -> MLP:
    """The ``mlp`` family: ``knobs`` is ``-d<depth>-w<width>``; features, sequences and
    images are taken flattened, token ids are refused."""
    match = _MLP.match(knobs)
    if not match:
        raise ScalarizeError(f"cannot read MLP spec 'mlp{knobs}'; write mlp-d<depth>-w<width>, "
                             "e.g. mlp-d2-w64")
    if vocab_size is not None:
        raise ScalarizeError(f"mlp{knobs} takes float features; these inputs are token ids: "
                             "use seq-d<depth>-w<width>")
    shape = image_shape if image_shape is not None else input_shape
    if shape is None:
        raise ScalarizeError("mlp needs image_shape= or input_shape=")
    depth, width = (int(g) for g in match.groups())
    return MLP(math.prod(shape), depth, width)


__all__ = ["MLP", "mlp"]
