"""A trained run loaded back: :func:`load_run` reads a run folder (or a search member) through the
run store and returns a :class:`TrainedModel`, the model with its heads, task kinds and input
transform, so that ``model.predict(x)`` gives each task's predictions in its units.

Which weights: a run's ``checkpoint.pt`` holds its **final** weights (the trainer replaces it
after every epoch; no best-epoch weights are kept), so a loaded run is the model its summary's
test numbers were measured on. A search member is its state when the search ended (a trial
search: when its trial finished or stopped), the model its ``test_acc`` was measured on; a
replay is an ordinary run folder (``SEARCH/replay-m<id>``).

What besides the weights rebuilds the model (the tasks, the input shape, the input transform)
is read from the checkpoint's record (:mod:`scalarize.training.model_record`); a checkpoint
written before the record existed has it rebuilt from the run's data (loaded as the run did).

Example:
    >>> import numpy as np, tempfile
    >>> from scalarize.config import load_config
    >>> from scalarize.launch import train_run
    >>> out = tempfile.mkdtemp()
    >>> summary = train_run(load_config(None, ["train.epochs=1", "model.spec=vit-d1-w16-p8",
    ...     "train.device=cpu", "benchmark.options={n_train: 32, n_val: 8, n_test: 8, "
    ...     "image_size: 16, cache: false}"]), out, progress=False)
    >>> model = load_run(f"{out}/{summary.run}")
    >>> x = np.zeros((2, *model.input_shape), dtype=np.uint8)
    >>> sorted(model.predict(x)) == sorted(summary.objectives), model.predict(x)["shape"].shape
    (True, (2,))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from scalarize.config import RunConfig, validation_message
from scalarize.errors import ScalarizeError
from scalarize.models import HeadSpec, MultiHeadModel, build_model
from scalarize.runs import layout
from scalarize.runs.store import RunDir, SearchDir
from scalarize.search.member import holdout_split
from scalarize.search.spec import SearchConfig
from scalarize.training import load_data
from scalarize.training.model_record import ModelRecord
from scalarize.training.task_kinds import TaskKind, build_kind

#: What a user gives as inputs: an array or a tensor, examples first.
Inputs = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class RunSource:
    """Where a loaded model comes from: its config, its saved trainer state, a readable
    description (``run FOLDER, final weights (epoch 3)``) and, for a search member, the share
    of the training split the search held out (its members trained on the rest)."""

    config: RunConfig
    state: dict[str, Any]
    description: str
    holdout: float | None = None


def _validated(tree: Any, path: Path, cls: type[RunConfig] | type[SearchConfig]) -> Any:
    try:
        return cls.model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, f"{path} is not a valid config")) from None


def _run_source(folder: Path) -> RunSource:
    run = RunDir(folder)
    config = _validated(run.read_config(), folder / layout.CONFIG, RunConfig)
    state = run.load_checkpoint()
    if state is None:
        raise ScalarizeError(f"run {folder} has no checkpoint yet; train it first (scalarize "
                             "train, or run the same command again to continue it)")
    done = "" if run.is_complete else ", unfinished"
    return RunSource(config, state,
                     f"run {folder}, final weights (epoch {state.get('epoch', '?')}{done})")


def _member_id(member: str | int | None, search: SearchDir) -> int:
    summary = search.read_summary()
    ids = [m.member for m in summary.members]
    if member in (None, "best"):
        return summary.best_member
    try:
        chosen = int(member)
    except ValueError:
        raise ScalarizeError(f"member {member!r}: give 'best' or a member number") from None
    if chosen not in ids:
        raise ScalarizeError(f"member {chosen}: the search in {search.path} has members "
                             f"{min(ids)}..{max(ids)}")
    if summary.members[ids.index(chosen)].diverged:
        raise ScalarizeError(f"member {chosen} diverged during the search; load another one")
    return chosen


def _member_state(search: SearchDir, member: int) -> dict[str, Any]:
    saved = search.load_member_checkpoint(member)  # a trial search's finished trial
    if saved is not None:
        return saved
    state = search.load_state()  # the in-process population: every member's last state
    members = (state or {}).get("members")
    if isinstance(members, list) and member < len(members):
        return members[member]
    if isinstance(members, dict) and member in members:
        return members[member]
    raise ScalarizeError(f"the search in {search.path} kept no weights of member {member} (a "
                         "Ray search keeps them in Ray's own checkpoints); retrain it with "
                         f"'scalarize replay {search.path} --member {member}' and load the "
                         "replay")


def _member_source(folder: Path, member: str | int | None) -> RunSource:
    search = SearchDir(folder)
    chosen = _member_id(member, search)
    config = _validated(search.read_config(), search.config_path, SearchConfig)
    state = _member_state(search, chosen)["trainer"]
    return RunSource(config.base(), state,
                     f"search {folder} member {chosen}, its weights when the search ended "
                     f"(epoch {state.get('epoch', '?')})", config.search.holdout)


def read_source(path: Path | str, member: str | int | None = None) -> RunSource:
    """The config and saved state of the run folder ``path``, or of ``member`` (``best``,
    the default, or a number) of the finished search folder ``path``."""
    folder = Path(path)
    if not folder.is_dir():
        raise ScalarizeError(f"{folder} is not a folder; give a run folder (with config.yaml "
                             "and checkpoint.pt) or a search folder with --member")
    if SearchDir(folder).is_study:
        return _member_source(folder, member)
    if member is not None:
        raise ScalarizeError(f"{folder} is a run folder, not a search; a member is chosen in "
                             "a search folder only")
    if not RunDir(folder).exists:
        raise ScalarizeError(f"{folder} holds no run (no config.yaml); give a run folder, "
                             "e.g. runs/<run name>, or a search folder")
    return _run_source(folder)


def run_data(source: RunSource) -> Any:
    """The data the run trained on, loaded as the run did (a search member: the training
    split without the held-out share)."""
    data = load_data(source.config)
    if source.holdout is not None:
        data = holdout_split(data, source.holdout, source.config.benchmark.seed)
    return data


def _record(source: RunSource) -> ModelRecord:
    saved = source.state.get("record")
    if saved is not None:
        return ModelRecord.from_state(saved)
    return ModelRecord.of(run_data(source))  # a checkpoint from before the record


def _head_specs(record: ModelRecord, shared_head: bool) -> tuple[dict[str, HeadSpec],
                                                                 dict[str, TaskKind]]:
    """The heads the trainer built (see :mod:`scalarize.training.objectives`) and the kind
    behind each head."""
    if record.view == "mdl":
        task = record.tasks[0]
        kind = build_kind(task.kind, task.kind_options)
        names = ("shared",) if shared_head else record.domains
        return {n: task.num_classes for n in names}, dict.fromkeys(names, kind)
    kinds = {t.name: build_kind(t.kind, t.kind_options) for t in record.tasks}
    return {name: kind.head() for name, kind in kinds.items()}, kinds


def head_outputs(model: nn.Module, x: torch.Tensor, names: Sequence[str]
                 ) -> tuple[torch.Tensor, ...]:
    """The outputs of the heads ``names`` on the model input ``x``: the model's features (one
    tensor, or a mapping head name -> features for a model with task-specific paths) through
    each head."""
    features = model(x)
    heads = cast(nn.ModuleDict, model.heads)
    return tuple(heads[name](features[name] if isinstance(features, Mapping) else features)
                 for name in names)


class TrainedModel(nn.Module):
    """A trained run: its model (encoder and heads), the kind behind each head and the input
    transform. Calling it maps a raw batch (as the run's data held it: uint8 images) to a
    tuple of head outputs in the order of :attr:`head_names`; that is what an export holds.
    :meth:`outputs` and :meth:`predict` take whole arrays in batches, without gradients."""

    def __init__(self, model: MultiHeadModel, record: ModelRecord,
                 kinds: dict[str, TaskKind], source: RunSource) -> None:
        super().__init__()
        self.model = model
        self.record = record
        self.kinds = kinds
        self.source = source
        self.head_names: tuple[str, ...] = tuple(kinds)
        self.eval()

    # -- what it is ---------------------------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        return self.source.config

    @property
    def view(self) -> str:
        return self.record.view

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task names (one in the multi-domain view)."""
        return tuple(t.name for t in self.record.tasks)

    @property
    def domains(self) -> tuple[str, ...]:
        return self.record.domains

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input (C, H, W for images)."""
        return self.record.input_shape

    @property
    def input_dtype(self) -> torch.dtype:
        """What the run's data held: uint8 images, int64 token ids, or floats."""
        if self.record.input.kind == "tokens":
            return torch.int64
        return torch.uint8 if self.record.inputs.raw == "uint8" else torch.float32

    @property
    def device(self) -> torch.device:
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def __repr__(self) -> str:
        return (f"TrainedModel({self.config.model.spec}, {self.view} heads "
                f"{list(self.head_names)}; {self.source.description})")

    # -- the model ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return head_outputs(self.model, self.record.inputs.apply(x), self.head_names)

    def _tensor(self, x: Inputs) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
        if not isinstance(tensor, torch.Tensor):
            raise ScalarizeError(f"inputs: give an array or a tensor, got {type(x).__name__}")
        shape = tuple(tensor.shape[1:])
        if tensor.ndim < 1 or shape != self.input_shape:
            raise ScalarizeError(f"inputs of shape {tuple(tensor.shape)}: this run takes "
                                 f"N×{'×'.join(map(str, self.input_shape))} (examples first)")
        kind = self.record.input.kind
        integer = not tensor.is_floating_point() and tensor.dtype != torch.bool
        if kind == "tokens":
            if not integer:
                raise ScalarizeError(f"inputs of dtype {tensor.dtype}: this run takes integer "
                                     "token ids")
            vocab = self.record.input.vocab_size
            if vocab is not None and len(tensor) and (int(tensor.min()) < 0
                                                      or int(tensor.max()) >= vocab):
                raise ScalarizeError(f"token ids {int(tensor.min())}..{int(tensor.max())}: "
                                     f"this run's vocabulary is 0..{vocab - 1}")
            return tensor
        raw = self.record.inputs.raw
        if kind == "image" and raw == "float" and not tensor.is_floating_point():
            raise ScalarizeError(f"inputs of dtype {tensor.dtype}: this run trained on float "
                                 "images as its dataset gave them; give them alike")
        if tensor.dtype == torch.bool or not (tensor.is_floating_point()
                                              or tensor.dtype == torch.uint8
                                              or raw == "float"):
            raise ScalarizeError(f"inputs of dtype {tensor.dtype}: give uint8 images (0..255) "
                                 "or floats in [0, 1]")
        if kind != "image" and integer:
            return tensor.float()
        return tensor

    @torch.no_grad()
    def outputs(self, x: Inputs, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Every head's raw output (logits, values, maps) on ``x``, on the CPU."""
        tensor = self._tensor(x)
        parts: list[tuple[torch.Tensor, ...]] = []
        was_training = self.training
        self.eval()
        try:
            for start in range(0, max(len(tensor), 1), batch_size):
                batch = tensor[start:start + batch_size].to(self.device)
                parts.append(tuple(o.float().cpu() for o in self(batch)))
        finally:
            self.train(was_training)
        return {name: torch.cat([p[i] for p in parts]) for i, name in enumerate(self.head_names)}

    def domain_index(self, domain: Any, n: int) -> np.ndarray:
        """Per example, the index of its domain: ``domain`` is one domain's name or index (for
        every example) or one name or index per example."""
        names = list(self.domains)
        values = np.asarray(domain)
        if values.ndim == 0:
            values = np.full(n, values.item(), dtype=values.dtype)
        if values.shape != (n,):
            raise ScalarizeError(f"domain: give one domain, or one per example ({n}), got "
                                 f"shape {values.shape}")
        if values.dtype.kind in "iu":
            bad = values[(values < 0) | (values >= len(names))]
            if bad.size:
                raise ScalarizeError(f"domain index {int(bad[0])}: this run has domains "
                                     f"0..{len(names) - 1} ({', '.join(names)})")
            return values.astype(np.int64)
        unknown = sorted({str(v) for v in values} - set(names))
        if unknown:
            raise ScalarizeError(f"domain {unknown[0]!r}: this run has domains "
                                 f"{', '.join(names)}")
        return np.array([names.index(str(v)) for v in values], dtype=np.int64)

    def predict(self, x: Inputs, domain: Any = None, batch_size: int = 256
                ) -> dict[str, np.ndarray]:
        """Each task's predictions on ``x`` in its units (the kind's
        :meth:`~scalarize.training.task_kinds.TaskKind.predict`: class ids, values, maps).
        In the multi-domain view, the one task's predictions, each example through its
        ``domain``'s head (a name or index for all, or one per example; not needed with a
        shared head)."""
        outputs = self.outputs(x, batch_size)
        if self.view != "mdl":
            return {name: self.kinds[name].predict(out).numpy()
                    for name, out in outputs.items()}
        task = self.tasks[0]
        if self.head_names == ("shared",):
            return {task: self.kinds["shared"].predict(outputs["shared"]).numpy()}
        n = len(next(iter(outputs.values())))
        if domain is None:
            raise ScalarizeError(f"this multi-domain run has a head per domain "
                                 f"({', '.join(self.domains)}); say which domain the inputs "
                                 "come from (domain=..., --domain, or a 'domain' array)")
        index = torch.from_numpy(self.domain_index(domain, n))
        stacked = torch.stack([outputs[d] for d in self.domains])  # D×N×classes
        chosen = stacked[index, torch.arange(n)]
        return {task: self.kinds[self.domains[0]].predict(chosen).numpy()}

    def restricted(self, heads: Sequence[str]) -> TrainedModel:
        """This model with only the heads ``heads`` (e.g. one domain's path to export)."""
        unknown = [h for h in heads if h not in self.kinds]
        if unknown:
            raise ScalarizeError(f"no head {unknown[0]!r}; this run has "
                                 f"{', '.join(self.head_names)}")
        return TrainedModel(self.model, self.record, {h: self.kinds[h] for h in heads},
                            self.source)


def load_run(path: Path | str, member: str | int | None = None, *,
             device: str | torch.device = "cpu") -> TrainedModel:
    """The trained model of the run folder ``path`` (a run, a replay), or of ``member``
    (``best`` by default, or a number) of the finished search folder ``path``, on ``device``
    and in eval mode. The model is rebuilt from the run's config (a built-in family, or the
    user's ``module:attr``, which must be importable: run from the folder that holds it or
    put it on ``PYTHONPATH``) without touching the caller's random generator."""
    source = read_source(path, member)
    record = _record(source)
    specs, kinds = _head_specs(record, source.config.model.shared_head)
    config = source.config
    with torch.random.fork_rng(devices=[]):
        model = build_model(config.model.spec, record.input, specs, config.model.options)
    try:
        model.load_state_dict(source.state["model"])
    except (RuntimeError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ScalarizeError(f"the weights of {source.description} do not fit the model its "
                             f"config builds ({type(exc).__name__}: {reason}); was the model's "
                             "code changed since it trained?") from None
    return TrainedModel(model, record, kinds, source).to(torch.device(device))


__all__ = ["RunSource", "TrainedModel", "head_outputs", "load_run", "read_source", "run_data"]
