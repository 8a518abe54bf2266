"""Model families with capacity knobs, built from compact spec strings, plus task heads.

Specs:

- ``vit-d<depth>-w<width>-p<patch>[-h<heads>]``, e.g. ``vit-d3-w48-p4`` (heads default to
  width / 16);
- ``resnet<depth>[-x<width multiplier>]``, e.g. ``resnet26-x0.5`` or ``resnet20``;
- ``deeplab<depth>[-x<width multiplier>]``: a dilated ResNet with a DeepLabV3 decoder per
  dense task (:mod:`scalarize.models.deeplab`), e.g. ``deeplab50`` or ``deeplab18-x0.25``;
- ``mlp-d<depth>-w<width>``: a multi-layer perceptron for tabular features (sequences and
  images flattened; :mod:`scalarize.models.mlp`), e.g. ``mlp-d2-w64``;
- ``seq-d<depth>-w<width>[-h<heads>]``: an embedding (token ids) or linear projection (float
  sequences) and ``depth`` transformer blocks, mean-pooled (:mod:`scalarize.models.sequence`),
  e.g. ``seq-d2-w32``;
- a family an installed package registers (entry-point group ``scalarize.models``), by name;
- ``mtan-resnet<depth>[-x<width>]``, ``cross-stitch-resnet<depth>[-x<width>]``: MTAN's
  attention per task over a shared ResNet, a ResNet per task joined by cross-stitch units
  (:mod:`scalarize.models.mtan`, :mod:`scalarize.models.cross_stitch`);
- ``mmoe-e<experts>-w<width>[-d<depth>]``, ``ple-l<levels>-e<experts>-w<width>[-d<depth>]``
  and ``cgc-e<experts>-w<width>[-d<depth>]`` (PLE with one level): MLP experts over the
  flattened input with a gate per task (:mod:`scalarize.models.experts`);
- ``package.module:attr``, an import target naming a user's model factory.

The factory contract (the same for built-ins, plugins and import targets): for images a family
is called as ``family(image_shape=(C, H, W), **options)`` with ``options`` from
``model.options``, plus ``knobs=<what follows the family name in the spec>`` when the spec has
any (``-d3-w48-p4`` for ``vit-d3-w48-p4``); for other inputs
(:mod:`scalarize.benchmarks.inputs`) as ``family(input_shape=..., **options)``: ``(F,)`` for
tabular features, ``(L, F)`` for float sequences, ``(L,)`` plus ``vocab_size=V`` for token ids
(int64 in 0..V-1). It returns an encoder: an ``nn.Module`` with an int ``out_features`` whose
forward maps a batch (B×C×H×W images, B×F, B×L×F or B×L) to B×``out_features`` features, and,
for images, to feed dense heads, a
``feature_map`` method returning B×``out_features``×h×w (see :class:`Encoder`), and, to decode
dense heads its own way, a ``dense_head(channels, image_shape)`` method returning the module
(the light :class:`~scalarize.models.heads.DenseDecoder` otherwise). The heads are added here,
as for the built-ins. A factory breaking the contract is refused in one line.

Task-specific paths (:mod:`scalarize.models.per_task`): a factory that takes ``tasks`` gets the
head names, ``tasks=("shape", "colour")``; an encoder with a ``tasks`` attribute returns one
feature tensor per task (a mapping ``task -> B×out_features``) and may say which parameters
are shared with ``shared_parameters()`` (the rest are task-specific). The methods, the conflict
probe and the heads read each task's own features.

Adding a family means one module and one registry line: ``FAMILIES.register("name")``.

Heads are given as ``name -> classes`` (a linear classifier) or ``name -> DenseHead(channels)``
(a per-pixel decoder, see :mod:`scalarize.models.heads`).

Example:
    >>> model = build_model("vit-d3-w48-p4", (3, 32, 32), {"shape": 4, "colour": 6})
    >>> describe(model, (3, 32, 32))["params"] > 0
    True
    >>> model_label("mymodels:build", {"width": 64, "depth": 4})
    'build-depth4-width64'
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from scalarize.benchmarks.inputs import InputSpec
from scalarize.errors import ScalarizeError
from scalarize.models.cross_stitch import cross_stitch
from scalarize.models.deeplab import deeplab
from scalarize.models.encoder import Encoder
from scalarize.models.experts import cgc, mmoe, ple
from scalarize.models.heads import DenseHead, HeadSpec, UserHead, build_head, is_dense
from scalarize.models.mlp import mlp
from scalarize.models.mtan import mtan
from scalarize.models.per_task import Features, is_per_task, shared_parameters, task_names
from scalarize.models.resnet import ResNet
from scalarize.models.sequence import sequence
from scalarize.models.vit import ViT
from scalarize.registry import Registry, is_import_target, target_label

FAMILIES: Registry[Encoder] = Registry("model family", "scalarize.models")
_VIT = re.compile(r"^-d([0-9]+)-w([0-9]+)-p([0-9]+)(?:-h([0-9]+))?$")
_RESNET = re.compile(r"^([0-9]+)(?:-x([0-9]*\.?[0-9]+))?$")


@FAMILIES.register("vit")
def _vit(knobs: str = "", *, image_shape: tuple[int, int, int]) -> Encoder:
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
def _resnet(knobs: str = "", *, image_shape: tuple[int, int, int]) -> Encoder:
    match = _RESNET.match(knobs)
    if not match:
        raise ScalarizeError(
            f"cannot read ResNet spec 'resnet{knobs}'; write resnet<depth>[-x<width>], "
            "e.g. resnet26-x0.5"
        )
    multiplier = float(match.group(2)) if match.group(2) else 1.0
    c, h, _ = image_shape
    return ResNet(int(match.group(1)), multiplier, image_size=h, in_channels=c)


FAMILIES.register("deeplab")(deeplab)
FAMILIES.register("mlp")(mlp)
FAMILIES.register("seq")(sequence)
FAMILIES.register("mtan")(mtan)
FAMILIES.register("cross-stitch")(cross_stitch)
FAMILIES.register("mmoe")(mmoe)
FAMILIES.register("ple")(ple)
FAMILIES.register("cgc")(cgc)

#: What a model is built for: an image shape ``(C, H, W)``, or any input's :class:`InputSpec`.
Inputs = tuple[int, int, int] | InputSpec


def as_input(inputs: Inputs) -> InputSpec:
    """``inputs`` as an :class:`InputSpec` (a plain shape is an image's ``(C, H, W)``)."""
    if isinstance(inputs, InputSpec):
        return inputs
    return InputSpec("image", tuple(int(d) for d in inputs))


#: what the model builder passes a factory itself (never from ``model.options``)
_GIVEN = ("image_shape", "input_shape", "vocab_size", "knobs", "tasks")
#: built-in family names with a hyphen (a spec's family is otherwise its first word)
_HYPHENATED = ("cross-stitch",)


class _FactoryFailed(ScalarizeError):
    """The factory's own code raised (it may work on the CPU where it failed on ``meta``)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check_call(factory: Callable[..., Any], spec: str, knobs: str,
                options: Mapping[str, Any], inputs: InputSpec) -> None:
    """Refuse, before calling, options the factory does not take and required ones missing,
    and a factory that does not take this kind of input."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): the call will tell
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [n for n, p in params.items() if n not in _GIVEN and p.kind in
             (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if inputs.is_image and "image_shape" not in params:
        if "input_shape" in params:
            raise ScalarizeError(f"model {spec} takes input_shape only, not images; these "
                                 f"inputs are {inputs.describe()}: use a vit, resnet or "
                                 "deeplab spec, or a factory taking image_shape=")
        raise ScalarizeError(f"model {spec}: its factory must take image_shape=(C, H, W) as a "
                             "keyword argument (see docs/extending.md)")
    missing_input = [n for n in inputs.factory_kwargs() if n not in params]
    if not inputs.is_image and missing_input:
        raise ScalarizeError(
            f"model {spec} is for images; these inputs are {inputs.describe()}: use "
            "mlp-d<depth>-w<width> or seq-d<depth>-w<width>, or a factory taking "
            f"{'= and '.join(missing_input)}= (see docs/extending.md)")
    if knobs and "knobs" not in params:
        raise ScalarizeError(f"model {spec}: this family takes nothing after its name in the "
                             "spec; give its settings in model.options")
    unknown = [k for k in options if k not in takes]
    if unknown:
        raise ScalarizeError(f"model {spec} takes no option {', '.join(map(repr, unknown))}; "
                             f"it takes: {', '.join(takes) or 'none'}")
    missing = [n for n in takes if params[n].default is inspect.Parameter.empty
               and n not in options]
    if missing:
        raise ScalarizeError(f"model {spec} needs option {', '.join(map(repr, missing))}; "
                             "give it in model.options")


def _check_encoder(encoder: object, spec: str) -> Encoder:
    """The encoder contract's structure: a module with a positive int ``out_features``."""
    if not isinstance(encoder, nn.Module):
        raise ScalarizeError(f"model {spec}: its factory returned a {type(encoder).__name__}, "
                             "not a torch.nn.Module encoder")
    out = getattr(encoder, "out_features", None)
    if not isinstance(out, int) or isinstance(out, bool) or out < 1:
        raise ScalarizeError(f"model {spec}: the encoder has no out_features (a positive int: "
                             "features per image); set it in the factory")
    return cast(Encoder, encoder)  # the contract is duck-typed: any module keeping it


def check_encoder_forward(encoder: Encoder, spec: str, inputs: InputSpec) -> None:
    """The encoder contract's forward, checked on a dummy batch of two (in eval mode, without
    gradients: no random numbers drawn, nothing trained): a (2, out_features) tensor, or one
    per task for a per-task encoder (:func:`check_encoder_output`)."""
    param = next(encoder.parameters(), None)
    batch = inputs.dummy(2, param.device if param is not None else None)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            features = encoder(batch)
    except ScalarizeError:
        raise
    except Exception as exc:
        raise _FactoryFailed(f"model {spec}: forward on a batch of shape {tuple(batch.shape)} "
                             f"failed: {_first_line(exc)}") from exc
    finally:
        encoder.train(was_training)
    check_encoder_output(encoder, spec, inputs, features, 2)


def check_encoder_output(encoder: Encoder, spec: str, inputs: InputSpec, features: object,
                         batch: int) -> None:
    """What ``encoder`` returned for a batch of ``batch`` inputs, against the contract: a
    (batch, out_features) tensor, or one per task for a per-task encoder. The trainer checks
    its first real batch's features with this (one forward serves both checks, see
    :func:`~scalarize.training.batch_check.check_first_batch`)."""
    out = encoder.out_features
    if is_per_task(encoder):
        _check_per_task(features, task_names(encoder), spec, out, batch)
        return
    shape = tuple(features.shape) if isinstance(features, torch.Tensor) else None
    if shape != (batch, out):
        got = f"shape {shape}" if shape is not None else f"a {type(features).__name__}"
        what = "images" if inputs.is_image else "inputs"
        raise ScalarizeError(f"model {spec}: forward returns {got} for a batch of {batch} "
                             f"{what}; the contract is a tensor of (batch, out_features) = "
                             f"({batch}, {out})")


def _check_per_task(features: object, tasks: tuple[str, ...], spec: str, out: int,
                    batch: int) -> None:
    """A per-task encoder's forward: a mapping with one (batch, out_features) tensor per
    task."""
    if not isinstance(features, Mapping) or set(features) != set(tasks):
        got = (f"features for {sorted(features)}" if isinstance(features, Mapping)
               else f"a {type(features).__name__}")
        raise ScalarizeError(f"model {spec}: its encoder names tasks {list(tasks)}, so its "
                             f"forward must return a dict with one tensor per task; it "
                             f"returns {got}")
    for task, value in features.items():
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else None
        if shape != (batch, out):
            got = f"shape {shape}" if shape is not None else f"a {type(value).__name__}"
            raise ScalarizeError(f"model {spec}: forward returns {got} for task {task!r} on "
                                 f"a batch of {batch} images; the contract is (batch, "
                                 f"out_features) = ({batch}, {out}) per task")


def _family(spec: str) -> tuple[Callable[..., Any], str]:
    """The factory ``spec`` names and the knobs that follow a family's name."""
    if is_import_target(spec):
        return FAMILIES.get(spec.strip()), ""
    lowered = spec.strip().lower()
    for name in _HYPHENATED:
        if lowered.startswith(name):
            return FAMILIES.get(name), lowered[len(name):]
    match = re.match(r"^([a-z]+)(.*)$", spec.strip().lower(), re.ASCII)
    if not match:
        raise ScalarizeError(f"cannot read model spec {spec!r}; e.g. vit-d3-w48-p4, "
                             "resnet20 or mypkg.models:build")
    family, knobs = match.groups()
    return FAMILIES.get(family), knobs


def _is_built_in(factory: Callable[..., Any]) -> bool:
    return str(getattr(factory, "__module__", "")).split(".")[0] == "scalarize"


def build_encoder(spec: str, image_shape: Inputs,
                  options: Mapping[str, Any] | None = None, *, check_forward: bool = True,
                  tasks: Sequence[str] | None = None) -> Encoder:
    """The encoder described by ``spec`` (a family spec or an import target) and ``options``
    (the factory's keyword arguments) for images of ``image_shape`` (C, H, W), or for any input
    its :class:`InputSpec` describes, its contract checked (the forward on a dummy batch unless
    ``check_forward`` is off). A factory that takes ``tasks`` gets the head names ``tasks``
    (per-task encoders: see the module doc)."""
    options = dict(options or {})
    inputs = as_input(image_shape)
    factory, knobs = _family(spec)
    _check_call(factory, spec, knobs, options, inputs)
    given = {"tasks": tuple(tasks)} if tasks is not None and _takes_tasks(factory) else {}
    try:
        built = factory(**inputs.factory_kwargs(), **({"knobs": knobs} if knobs else {}),
                        **given, **options)
    except ScalarizeError:
        raise
    except Exception as exc:
        raise _FactoryFailed(f"model {spec}: its factory raised {_first_line(exc)}") from exc
    encoder = _check_encoder(built, spec)
    if is_per_task(encoder) and tasks is not None and task_names(encoder) != tuple(tasks):
        raise ScalarizeError(f"model {spec}: its encoder makes features for tasks "
                             f"{list(task_names(encoder))} but the heads are {list(tasks)}; "
                             "build it for the tasks= its factory is given")
    if check_forward:
        check_encoder_forward(encoder, spec, inputs)
    return encoder


def _takes_tasks(factory: Callable[..., Any]) -> bool:
    try:
        return "tasks" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def model_label(spec: str, options: Mapping[str, Any] | None = None) -> str:
    """A readable name for a model, safe as (part of) one folder name: the spec (an import
    target's attribute) and the options in key order, e.g. ``build-depth4-width64``. A label
    that had to be changed to be safe, or shortened, ends with a hash of the options, so
    different models keep different labels."""
    def text(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "x".join(text(v) for v in value)
        if isinstance(value, bool):
            return str(value).lower()
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)

    options = dict(options or {})
    raw = "-".join([target_label(spec.strip()), *(f"{k}{text(options[k])}"
                                                   for k in sorted(options))])
    label = re.sub(r"[^A-Za-z0-9._+-]", "_", raw).lstrip(".") or "model"
    if label != raw or len(label) > 80:
        digest = hashlib.sha1(json.dumps([spec, options], sort_keys=True, default=str)
                              .encode()).hexdigest()[:6]
        label = f"{label[:72]}-{digest}"
    return label


class MultiHeadModel(nn.Module):
    """An encoder and named heads. ``forward`` returns the encoder's features (pooled, or the
    feature map when a head is dense): one shared tensor, or, for a per-task encoder, one per
    head (:mod:`scalarize.models.per_task`); the objectives decide which head reads which
    examples."""

    encoder: Encoder

    def __init__(self, encoder: Encoder, heads: Mapping[str, HeadSpec],
                 image_shape: tuple[int, int, int], inputs: InputSpec | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.image_shape = tuple(image_shape)
        #: what one example is (``image_shape`` describes images; any input's spec otherwise)
        self.inputs = inputs if inputs is not None else as_input(image_shape)
        self.spatial = any(is_dense(spec) for spec in heads.values())
        map_size = self._map_size(image_shape) if self.spatial else None
        own = getattr(encoder, "dense_head", None)  # an encoder's own dense decoder
        self.heads = nn.ModuleDict({
            name: own(spec.channels, image_shape) if callable(own) and isinstance(spec, DenseHead)
            else build_head(spec, encoder.out_features, map_size, image_shape[1:])
            for name, spec in heads.items()
        })

    def _map_size(self, image_shape: tuple[int, int, int]) -> int:
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                fmap = self.encoder.feature_map(torch.zeros(1, *image_shape))
                if isinstance(fmap, Mapping):  # per task: every task's map has one size
                    fmap = next(iter(fmap.values()))
        except (AttributeError, NotImplementedError):
            raise ScalarizeError(f"{type(self.encoder).__name__} has no feature map, so it "
                                 "cannot feed dense heads; use a vit or resnet spec, or give "
                                 "the encoder a feature_map method (docs/extending.md)"
                                 ) from None
        except ScalarizeError:
            raise
        except Exception as exc:
            raise _FactoryFailed(f"{type(self.encoder).__name__}.feature_map failed on one "
                                 f"image: {_first_line(exc)}") from exc
        finally:
            self.encoder.train(was_training)
        out = self.encoder.out_features
        if not isinstance(fmap, torch.Tensor) or fmap.ndim != 4 or fmap.shape[1] != out:
            got = tuple(fmap.shape) if isinstance(fmap, torch.Tensor) else type(fmap).__name__
            raise ScalarizeError(f"{type(self.encoder).__name__}.feature_map returns {got} for "
                                 f"one image; dense heads need (1, out_features={out}, h, w)")
        return int(fmap.shape[-1])

    def forward(self, x: torch.Tensor) -> Features:
        return self.encoder.feature_map(x) if self.spatial else self.encoder(x)

    @property
    def per_task(self) -> bool:
        """Whether the encoder gives each head its own features."""
        return is_per_task(self.encoder)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The encoder's shared parameters (what gradient-based MTO methods aggregate over):
        all of a hard-sharing encoder's; what a per-task encoder names, or else those more than
        one task's features depend on (:func:`~scalarize.models.per_task.reached_by_several`)."""
        if not self.per_task:
            return list(self.encoder.parameters())
        param = next(self.encoder.parameters(), None)
        example = self.inputs.dummy(2, param.device if param is not None else None)
        return shared_parameters(self.encoder, example)


def build_model(spec: str, image_shape: Inputs, heads: Mapping[str, HeadSpec],
                options: Mapping[str, Any] | None = None, *, check_forward: bool = True
                ) -> MultiHeadModel:
    """Encoder from ``spec`` and ``options`` (for images of ``image_shape``, or the input an
    :class:`InputSpec` describes) plus one head per entry of ``heads``: ``name -> classes``
    for a linear classifier, ``name -> DenseHead(channels)`` for a dense decoder (images
    only)."""
    inputs = as_input(image_shape)
    _check_shapes(inputs, heads)
    encoder = build_encoder(spec, inputs, options, check_forward=check_forward,
                            tasks=tuple(heads))
    return MultiHeadModel(encoder, heads, inputs.shape, inputs=inputs)  # type: ignore[arg-type]


def _check_shapes(inputs: InputSpec, heads: Mapping[str, HeadSpec]) -> None:
    shape = inputs.shape
    if inputs.is_image and (len(shape) != 3 or min(shape) < 1):
        raise ScalarizeError(f"images of shape {tuple(shape)} cannot feed a model; "
                             "give channels, height and width of at least 1")
    dense = [name for name, head in heads.items() if is_dense(head)]
    if dense and not inputs.is_image:
        raise ScalarizeError(f"task {dense[0]!r} is dense (a map per image) but these inputs "
                             f"are {inputs.describe()}; dense tasks need images: give it one "
                             "value (or vector) per example, e.g. regression with dense: false")
    for name, head in heads.items():
        if isinstance(head, UserHead):
            continue
        size = head.channels if isinstance(head, DenseHead) else head
        if size < 1:
            raise ScalarizeError(f"head {name!r} has {size} outputs; a task needs at least 1 "
                                 "class or channel")


def check_model(spec: str, image_shape: Inputs, heads: Mapping[str, HeadSpec],
                budget_bytes: int | None = None, options: Mapping[str, Any] | None = None
                ) -> int:
    """Build the model on the ``meta`` device (no memory, no compute) to check that ``spec``
    and ``options`` fit ``image_shape`` (or an :class:`InputSpec`) and ``heads`` and keep the
    encoder contract; returns its parameter count. With ``budget_bytes``, a model whose
    parameters, gradients and Adam state (16 bytes per parameter) exceed it is refused before
    anything is allocated.

    A user's factory whose code cannot run on ``meta`` tensors (it reads values, calls
    ``.item()``, loads weights, ...) is built on the CPU instead: this check then allocates
    the model once, and the budget is checked after that allocation.

    Example:
        >>> check_model("vit-d1-w16-p8", (3, 16, 16), {"shape": 4}) > 0
        True
    """
    def refused(exc: ScalarizeError) -> ScalarizeError:
        message = str(exc)
        return ScalarizeError(message if spec in message else f"model {spec}: {message}")

    def within_budget(model: nn.Module) -> int:
        params = sum(p.numel() for p in model.parameters())
        if budget_bytes is not None and 16 * params > budget_bytes:
            shown = model_label(spec, options) if options else spec
            raise ScalarizeError(
                f"model {shown} with heads {dict(heads)} has {params:,} parameters and needs "
                f"about {16 * params / 2**30:,.1f} GiB to train, more than the "
                f"{budget_bytes / 2**30:,.1f} GiB here; choose a smaller model, image size or "
                "number of classes")
        return params

    inputs = as_input(image_shape)
    try:
        factory, _ = _family(spec)
        with torch.device("meta"):
            model = build_model(spec, inputs, heads, options, check_forward=False)
            params = within_budget(model)
            check_encoder_forward(model.encoder, spec, inputs)
        return params
    except _FactoryFailed as exc:
        if _is_built_in(factory):  # the built-ins run on meta: what failed is the size
            raise refused(exc) from None
    except ScalarizeError as exc:
        raise refused(exc) from None
    try:  # the user's code cannot run on meta tensors: build it for real
        model = build_model(spec, inputs, heads, options)
    except ScalarizeError as exc:
        raise refused(exc) from exc.__cause__
    return within_budget(model)


def gives_features_per_task(spec: str, image_shape: Inputs,
                            heads: Mapping[str, HeadSpec],
                            options: Mapping[str, Any] | None = None) -> bool:
    """Whether the encoder of ``spec`` gives each head its own features (built on ``meta``,
    or on the CPU for a factory that cannot run there; nothing is run)."""
    try:
        with torch.device("meta"):
            encoder = build_encoder(spec, image_shape, options, check_forward=False,
                                    tasks=tuple(heads))
    except _FactoryFailed:
        encoder = build_encoder(spec, image_shape, options, check_forward=False,
                                tasks=tuple(heads))
    return is_per_task(encoder)


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


# torch's counter knows the CUDA attention kernels but not the CPU one.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
}


def describe(model: nn.Module, image_shape: Inputs) -> dict[str, int]:
    """Parameter counts (total and encoder) and forward FLOPs per example (image) of the
    encoder."""
    encoder = getattr(model, "encoder", model)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with torch.no_grad(), counter:
        encoder(as_input(image_shape).dummy(1, device))
    encoder.train(was_training)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "encoder_params": sum(p.numel() for p in encoder.parameters()),
        "flops": int(counter.get_total_flops()),
    }


__all__ = ["FAMILIES", "DenseHead", "HeadSpec", "InputSpec", "Inputs", "MultiHeadModel",
           "ResNet", "UserHead", "ViT", "as_input", "build_encoder", "build_model",
           "check_encoder_forward", "check_encoder_output", "check_model", "describe",
           "gives_features_per_task", "is_dense", "model_label"]
