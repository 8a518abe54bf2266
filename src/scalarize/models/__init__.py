"""Model families with capacity knobs, built from compact spec strings, plus task heads.

Specs:

- ``vit-d<depth>-w<width>-p<patch>[-h<heads>]``, e.g. ``vit-d3-w48-p4`` (heads default to
  width / 16);
- ``resnet<depth>[-x<width multiplier>]``, e.g. ``resnet26-x0.5`` or ``resnet20``.

Adding a family means one module and one registry line: ``FAMILIES.register("name")`` on a
function ``(knobs: str, image_shape) -> encoder`` whose encoder has ``out_features`` (and a
``feature_map`` method returning N×features×h×w, for dense heads).

Heads are given as ``name -> classes`` (a linear classifier) or ``name -> DenseHead(channels)``
(a per-pixel decoder, see :mod:`scalarize.models.heads`).

Example:
    >>> model = build_model("vit-d3-w48-p4", (3, 32, 32), {"shape": 4, "colour": 6})
    >>> describe(model, (3, 32, 32))["params"] > 0
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder
from scalarize.models.heads import DenseHead, HeadSpec, build_head
from scalarize.models.resnet import ResNet
from scalarize.models.vit import ViT
from scalarize.registry import Registry

FAMILIES: Registry[Encoder] = Registry("model family")
_VIT = re.compile(r"^-d([0-9]+)-w([0-9]+)-p([0-9]+)(?:-h([0-9]+))?$")
_RESNET = re.compile(r"^([0-9]+)(?:-x([0-9]*\.?[0-9]+))?$")


@FAMILIES.register("vit")
def _vit(knobs: str, image_shape: tuple[int, int, int]) -> Encoder:
    match = _VIT.match(knobs)
    if not match:
        raise ScalarizeError(
            f"cannot read ViT spec 'vit{knobs}'; write vit-d<depth>-w<width>-p<patch>[-h<heads>]"
            ", e.g. vit-d3-w48-p4"
        )
    depth, width, patch = (int(g) for g in match.groups()[:3])
    heads = int(match.group(4)) if match.group(4) else max(1, width // 16)
    c, h, w = image_shape
    if h != w:
        raise ScalarizeError(f"a ViT needs square images; these are {h}x{w} (height x width)")
    return ViT(image_size=h, patch=patch, depth=depth, width=width, heads=heads, in_channels=c)


@FAMILIES.register("resnet")
def _resnet(knobs: str, image_shape: tuple[int, int, int]) -> Encoder:
    match = _RESNET.match(knobs)
    if not match:
        raise ScalarizeError(
            f"cannot read ResNet spec 'resnet{knobs}'; write resnet<depth>[-x<width>], "
            "e.g. resnet26-x0.5"
        )
    multiplier = float(match.group(2)) if match.group(2) else 1.0
    c, h, _ = image_shape
    return ResNet(int(match.group(1)), multiplier, image_size=h, in_channels=c)


def build_encoder(spec: str, image_shape: tuple[int, int, int]) -> Encoder:
    """The shared encoder described by ``spec`` for images of ``image_shape`` (C, H, W)."""
    match = re.match(r"^([a-z]+)(.*)$", spec.strip().lower(), re.ASCII)
    if not match:
        raise ScalarizeError(f"cannot read model spec {spec!r}; e.g. vit-d3-w48-p4 or resnet20")
    family, knobs = match.groups()
    return FAMILIES.get(family)(knobs, image_shape)


class MultiHeadModel(nn.Module):
    """A shared encoder and named heads. ``forward`` returns the shared features (pooled, or
    the feature map when a head is dense); the objectives decide which head reads which
    examples."""

    encoder: Encoder

    def __init__(self, encoder: Encoder, heads: Mapping[str, HeadSpec],
                 image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.spatial = any(isinstance(spec, DenseHead) for spec in heads.values())
        map_size = self._map_size(image_shape) if self.spatial else None
        self.heads = nn.ModuleDict({
            name: build_head(spec, encoder.out_features, map_size, image_shape[-1])
            for name, spec in heads.items()
        })

    def _map_size(self, image_shape: tuple[int, int, int]) -> int:
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                side = self.encoder.feature_map(torch.zeros(1, *image_shape)).shape[-1]
        except (AttributeError, NotImplementedError):
            raise ScalarizeError(f"{type(self.encoder).__name__} has no feature map, so it "
                                 "cannot feed dense heads; use a vit or resnet spec") from None
        finally:
            self.encoder.train(was_training)
        return int(side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.feature_map(x) if self.spatial else self.encoder(x)

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the shared encoder (what gradient-based MTO methods aggregate over)."""
        return list(self.encoder.parameters())


def build_model(spec: str, image_shape: tuple[int, int, int], heads: Mapping[str, HeadSpec]
                ) -> MultiHeadModel:
    """Encoder from ``spec`` plus one head per entry of ``heads``: ``name -> classes`` for a
    linear classifier, ``name -> DenseHead(channels)`` for a dense decoder."""
    _check_shapes(image_shape, heads)
    return MultiHeadModel(build_encoder(spec, image_shape), heads, image_shape)


def _check_shapes(image_shape: tuple[int, int, int], heads: Mapping[str, HeadSpec]) -> None:
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ScalarizeError(f"images of shape {tuple(image_shape)} cannot feed a model; "
                             "give channels, height and width of at least 1")
    for name, head in heads.items():
        size = head.channels if isinstance(head, DenseHead) else head
        if size < 1:
            raise ScalarizeError(f"head {name!r} has {size} outputs; a task needs at least 1 "
                                 "class or channel")


def check_model(spec: str, image_shape: tuple[int, int, int], heads: Mapping[str, HeadSpec],
                budget_bytes: int | None = None) -> int:
    """Build the model on the ``meta`` device (no memory, no compute) to check that ``spec``
    fits ``image_shape`` and ``heads``; returns its parameter count. With ``budget_bytes``, a
    model whose parameters, gradients and Adam state (16 bytes per parameter) exceed it is
    refused before anything is allocated.

    Example:
        >>> check_model("vit-d1-w16-p8", (3, 16, 16), {"shape": 4}) > 0
        True
    """
    try:
        with torch.device("meta"):
            model = build_model(spec, image_shape, heads)
    except ScalarizeError as exc:
        message = str(exc)
        raise ScalarizeError(message if spec in message else f"model {spec}: {message}"
                             ) from None
    params = sum(p.numel() for p in model.parameters())
    if budget_bytes is not None and 16 * params > budget_bytes:
        raise ScalarizeError(
            f"model {spec} with heads {dict(heads)} has {params:,} parameters and needs about "
            f"{16 * params / 2**30:,.1f} GiB to train, more than the {budget_bytes / 2**30:,.1f}"
            " GiB here; choose a smaller model, image size or number of classes")
    return params


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


# torch's counter knows the CUDA attention kernels but not the CPU one.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
}


def describe(model: nn.Module, image_shape: tuple[int, int, int]) -> dict[str, int]:
    """Parameter counts (total and encoder) and forward FLOPs per image of the encoder."""
    encoder = getattr(model, "encoder", model)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with torch.no_grad(), counter:
        encoder(torch.zeros(1, *image_shape, device=device))
    encoder.train(was_training)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "encoder_params": sum(p.numel() for p in encoder.parameters()),
        "flops": int(counter.get_total_flops()),
    }


__all__ = ["FAMILIES", "DenseHead", "HeadSpec", "MultiHeadModel", "ResNet", "ViT",
           "build_encoder", "build_model", "check_model", "describe"]
