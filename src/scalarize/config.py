"""Run configuration: YAML files validated with pydantic, every field overridable as
``section.field=value`` on the command line.

Example:
    >>> cfg = load_config(None, ["model.spec=resnet20", "train.epochs=2"])
    >>> cfg.model.spec, cfg.train.epochs
    ('resnet20', 2)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from scalarize.errors import ScalarizeError
from scalarize.weights import SimplexWeights

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


def _safe_name(name: str | None) -> str | None:
    """A run name is one visible folder name inside ``--out``: no separators, no leading ``.``
    (so no ``..``, and no clash with the store's hidden temporaries), no control characters, at
    most 120 characters."""
    if name is None:
        return None
    bad = (not name.strip() or name.startswith(".") or "/" in name or "\\" in name
           or len(name) > 120 or any(ord(c) < 32 or ord(c) == 127 for c in name))
    if bad:
        raise ValueError(f"{name[:60]!r} is not a folder name; use letters, digits, '-', '_' "
                         "and '.' (not first), without '/', at most 120 characters")
    return name


RunName = Annotated[str, AfterValidator(_safe_name)]


def _finite_numbers(tree: Any, where: str = "") -> Any:
    """Refuse NaN and infinities anywhere in a free-form options tree."""
    if isinstance(tree, float) and not math.isfinite(tree):
        raise ValueError(f"{where or 'a value'} is {tree}; give a finite number")
    if isinstance(tree, dict):
        for key, value in tree.items():
            _finite_numbers(value, f"{where}.{key}" if where else str(key))
    if isinstance(tree, list):
        for i, value in enumerate(tree):
            _finite_numbers(value, f"{where}[{i}]")
    return tree


Options = Annotated[dict[str, Any], AfterValidator(_finite_numbers)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BenchmarkConfig(_Section):
    """Which data: a registered benchmark, its view, an optional task subset, its options."""

    name: str = "shapes"
    view: Literal["mtl", "mdl"] = "mtl"
    tasks: list[str] | None = None
    seed: Seed = Field(0, description="seed of the data (generation, splits), kept apart from "
                                     "the run seed so that seeds of a study share their data")
    options: Options = Field(default_factory=dict)


class ModelConfig(_Section):
    """Which encoder (a spec string, or an import target ``package.module:factory``), the
    factory's keyword arguments, and whether MDL domains share one head."""

    spec: str = "vit-d3-w48-p4"
    options: Options = Field(
        default_factory=dict,
        description="keyword arguments of the model factory, e.g. {width: 64, depth: 4} for "
                    "spec mypkg.models:build (see docs/extending.md)")
    shared_head: bool = Field(
        False, description="MDL only: one head for all domains (they share labels)"
    )


class ScalarizationConfig(_Section):
    """The weights on the simplex and, for MDL, how they act (data resampling or loss weights)."""

    weights: str | list[float] | dict[str, float] = "uniform"
    mdl_mode: Literal["resample", "loss"] = "resample"
    schedule: list[tuple[int, list[float]]] | None = Field(
        None, description="weights that change during training: [[epoch, weights], ...], "
                          "each applying from that many finished epochs on (a PBT schedule)")


class MethodConfig(_Section):
    """How per-objective losses become one update (``static`` = weighted sum)."""

    name: str = "static"
    options: Options = Field(default_factory=dict)


class AugmentConfig(_Section):
    """Batch augmentation of training images (on the device): random crop after zero padding
    (of the normalised image, i.e. mean colour), left-right flip."""

    padding: int = Field(4, ge=0, le=256)
    flip: bool = True


def _switch(value: Any) -> Any:
    """YAML reads ``true``/``false`` as booleans; a three-way switch keeps them as words."""
    return str(value).lower() if isinstance(value, bool) else value


class TrainConfig(_Section):
    """Optimisation recipe (the paper's ViT study by default) and where to run."""

    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    grad_clip: float | None = Field(None, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int | None = Field(None, ge=1, description="CPU threads (torch default if unset)")
    compile: Annotated[Literal["auto", "true", "false"], BeforeValidator(_switch)] = Field(
        "auto", description="torch.compile the encoder's training step: auto (on CUDA, off on "
        "CPU, where it was measured not to pay), true or false (scalarize.training.compiling)")
    augment: AugmentConfig | None = Field(None, description="e.g. {padding: 4, flip: true}")
    workers: int = Field(2, ge=0, le=64, description="loader processes reading a streamed "
                         "dataset (0: read in the training process); in-memory data ignores it")
    nproc: int = Field(1, ge=1, le=1024, description="processes that train the run data-"
                       "parallel (scalarize train --nproc; a sweep's or comparison's runs); "
                       "1: one process")

    # ``nproc`` says how a run is trained, not which run it is (the update is one process's
    # on the same global batch, to float rounding): two configs that differ only there are
    # the same run, and a one-process run's config.yaml does not mention it. A checkpoint
    # records its processes, and a run resumes on as many (the trainer says so in one line).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainConfig):
            return NotImplemented
        return ({k: v for k, v in self.__dict__.items() if k != "nproc"}
                == {k: v for k, v in other.__dict__.items() if k != "nproc"})

    @model_serializer(mode="wrap")
    def _one_process_unsaid(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.nproc == 1:
            data.pop("nproc", None)
        return data


class WandbTracking(_Section):
    """Weights & Biases (only where ``wandb`` is installed; offline by default: nothing
    leaves the machine until ``wandb sync``)."""

    project: str = "scalarize"
    mode: Literal["offline", "online", "disabled"] = "offline"
    entity: str | None = None
    dir: str | None = Field(None, description="folder of W&B's own files (default: ./wandb)")


def _absolute_location(value: str | None) -> str | None:
    """A relative folder, ``file:`` or ``sqlite:///`` location made absolute (from the folder
    the config is read in), so that a run on a Ray worker logs to the same place."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    scheme, sep, rest = value.partition(":")
    if sep and scheme == "sqlite" and rest.startswith("///") and not rest.startswith("////"):
        return f"sqlite:///{Path(rest[3:]).resolve()}"
    if sep and scheme == "file" and not rest.startswith("/"):
        return f"file://{Path(rest).resolve()}"
    if sep and len(scheme) > 1:  # another scheme (http, https, databricks, file:///...)
        return value
    return str(Path(value).expanduser().resolve())


Location = Annotated[str | None, AfterValidator(_absolute_location)]


class TrackingConfig(_Section):
    """Where runs are also logged: TensorBoard event folders, an MLflow tracking store, W&B
    (see docs/tracking.md). Tracking observes a run and never defines it: **any two tracking
    sections compare equal**, so a run or study keeps its identity when tracking is switched on,
    off or moved (``--resume`` of a run started without tracking continues it)."""

    tensorboard: Location = Field(None, description="folder of event files: DIR/<run>, or "
                                  "DIR/<study>/<run> for the runs of a sweep, comparison or "
                                  "search")
    mlflow: Location = Field(None, description="MLflow tracking URI, e.g. sqlite:///mlflow.db "
                             "or http://host:5000")
    experiment: str = Field("scalarize", min_length=1, description="the MLflow experiment")
    wandb: WandbTracking | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrackingConfig)

    @property
    def enabled(self) -> bool:
        """Whether any backend is set."""
        return bool(self.tensorboard or self.mlflow or self.wandb)


class Keep:
    """The "leave it as it is" marker of :meth:`RunConfig.derive`."""


KEEP = Keep()


class RunConfig(_Section):
    """Everything that defines one training run."""

    name: RunName | None = None
    seed: Seed = 0
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    scalarization: ScalarizationConfig = Field(default_factory=ScalarizationConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    probes: dict[str, Options | None] = Field(
        default_factory=dict, description="probes to run, e.g. {conflicts: {every: 50}}"
    )
    smoke: list[str] = Field(
        default_factory=list,
        description="overrides that --smoke adds after its own (e.g. a smaller model)",
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="also log to TensorBoard / MLflow / W&B; never part of the run's identity")

    def to_yaml(self) -> str:
        """The resolved config as YAML (what ``config.yaml`` of a run holds)."""
        return dump_yaml(self)

    def derive(self, *, seed: int | None = None, weights: SimplexWeights | str | None = None,
               schedule: list[tuple[int, list[float]]] | None = None,
               method: MethodConfig | None = None, spec: str | None = None,
               name: str | Keep | None = KEEP) -> Self:
        """A copy with a new seed, weights (validated :class:`SimplexWeights`, or a preset
        string such as ``onehot:shape``), weight schedule, method, model spec or run name; the
        one way studies derive their runs' configs. ``name=None`` restores the default name.

        Example:
            >>> from scalarize.weights import parse_weights
            >>> base = RunConfig()
            >>> run = base.derive(seed=3, weights=parse_weights([1, 3], ["a", "b"]), name="x")
            >>> run.seed, run.scalarization.weights, run.name, base.seed
            (3, [0.25, 0.75], 'x', 0)
        """
        scalarization: dict[str, Any] = {}
        if weights is not None:
            scalarization["weights"] = (list(weights.values)
                                        if isinstance(weights, SimplexWeights) else weights)
        if schedule is not None:
            scalarization["schedule"] = [(int(e), list(w)) for e, w in schedule]
        update: dict[str, Any] = {"scalarization": self.scalarization.model_copy(
            update=scalarization)}
        if seed is not None:
            update["seed"] = seed
        if method is not None:
            update["method"] = method
        if spec is not None:
            update["model"] = self.model.model_copy(update={"spec": spec})
        if not isinstance(name, Keep):
            update["name"] = name
        return self.model_copy(update=update, deep=True)


class StudyConfig(RunConfig):
    """A run config (the base of every run of a study) plus the study's own section."""

    def base(self) -> RunConfig:
        """The run config without the study's section."""
        own = set(type(self).model_fields) - set(RunConfig.model_fields)
        return RunConfig.model_validate(self.model_dump(exclude=own))


_Config = TypeVar("_Config", bound=RunConfig)


def with_nproc(config: _Config, nproc: int) -> _Config:
    """``config`` trained on ``nproc`` processes (``train.nproc``).

    Example:
        >>> run = with_nproc(RunConfig(), 2)
        >>> run.train.nproc, "nproc" in RunConfig().to_yaml(), run == RunConfig()
        (2, False, True)
    """
    if config.train.nproc == nproc:
        return config
    return config.model_copy(update={"train": config.train.model_copy(update={"nproc": nproc})})


def same_config(saved: Any, config: BaseModel) -> bool:
    """Whether a saved config tree, validated with ``config``'s own model (so fields added
    since it was written take their defaults), equals ``config``."""
    try:
        return type(config).model_validate(saved) == config
    except ValidationError:
        return False


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "tuple", "none"}


def _is_union_tag(part: object) -> bool:
    """A location part naming a union's branch (``list[float]``), not a field."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or part[:1].isupper()
                                      or part.startswith(("constrained-", "function-", "lax-",
                                                          "json-")))


def validation_message(exc: ValidationError, what: str) -> str:
    """One line from a pydantic error: where, what is wrong."""
    errors = exc.errors()
    # in a union (weights: str | list | dict) the deepest error is the branch the user meant
    # (a type mismatch is the branch not meant, so our own checks' messages win ties)
    first = max(errors, key=lambda e: (e["type"] == "extra_forbidden",  # a typo'd key first
                                       len([p for p in e["loc"] if not _is_union_tag(p)]),
                                       not e["type"].endswith("_type")))
    where = ".".join(str(p) for p in first["loc"] if not _is_union_tag(p)) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    seen = first.get("input")
    if isinstance(seen, int | float | str) and not isinstance(seen, bool) and \
            first["type"] not in {"value_error", "missing", "extra_forbidden"}:
        message += f" (got {str(seen)[:40]!s})"
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{what}: {where}: {message}{extra}"


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ScalarizeError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML: numbers, lists, null, ...)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ScalarizeError(
                f"cannot read override {item!r}; write section.field=value, e.g. train.epochs=5"
            )
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        except RecursionError:
            raise ScalarizeError(f"override {key!r} nests too deeply to be a value") from None
        _check_size(value, f"override {key!r}")
        _set_path(tree, key.strip(), value)
    return tree


MAX_CONFIG_BYTES = 1 << 20  # a config is a few kilobytes; anything near a megabyte is a mistake


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    silently, so a config would train something other than what it seems to say)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


MAX_CONFIG_VALUES = 100_000  # values in a config once YAML aliases are expanded
MAX_CONFIG_DEPTH = 64


def _check_size(tree: Any, source: str) -> None:
    """Refuse a tree that YAML aliases blow up (a "billion laughs" bomb) or make endless (an
    alias to itself): every reader after this one walks it value by value."""
    count = 0

    def walk(node: Any, depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_CONFIG_VALUES or depth > MAX_CONFIG_DEPTH:
            raise ScalarizeError(f"{source} expands to more than {MAX_CONFIG_VALUES:,} values "
                                 f"or {MAX_CONFIG_DEPTH} levels (YAML aliases?); write it out "
                                 "plainly")
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        for child in children:
            walk(child, depth + 1)

    walk(tree, 0)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, with a clear error when missing or malformed."""
    if path.is_dir():
        raise ScalarizeError(f"config file {path} is a folder; give a YAML file, e.g. "
                             "configs/shapes_mtl.yaml")
    if not path.is_file():
        raise ScalarizeError(f"config file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ScalarizeError(f"config file {path} is {size / 2**20:,.1f} MiB; a config is a few "
                             "kilobytes of YAML, did you pass a data file?")
    try:
        tree = yaml.load(path.read_bytes().decode("utf-8"), Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError as exc:
        raise ScalarizeError(f"config file {path} is not UTF-8 text (byte {exc.start}); save "
                             "it as UTF-8 YAML") from None
    except RecursionError:
        raise ScalarizeError(f"config file {path} nests too deeply to be a config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        why = f" ({problem})" if problem else ""
        raise ScalarizeError(f"config file {path} is not valid YAML{where}{why}") from None
    if not isinstance(tree, dict):
        raise ScalarizeError(f"config file {path} must hold a mapping of sections")
    _check_size(tree, f"config file {path}")
    return tree


def load_config(path: Path | str | None, overrides: list[str] | None = None) -> RunConfig:
    """Read ``path`` (or the defaults when ``None``), apply overrides, validate."""
    tree = read_yaml(Path(path)) if path is not None else {}
    apply_overrides(tree, overrides or [])
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, "invalid config")) from None


StudyConfigT = TypeVar("StudyConfigT", bound=RunConfig)


def load_study_config(cls: type[StudyConfigT], section: str, example: str, path: Path | str,
                      overrides: list[str] | None = None) -> StudyConfigT:
    """A run config with an extra ``section`` (a sweep, a comparison) validated as ``cls``."""
    tree = apply_overrides(read_yaml(Path(path)), overrides or [])
    if section not in tree:
        raise ScalarizeError(f"{path} has no '{section}' section; see {example}")
    try:
        return cls.model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, f"invalid {section} config")) from None


def dump_yaml(config: BaseModel) -> str:
    """Any config as YAML, fields in declaration order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
