"""Typed records: every file and every JSON line that scalarize writes, one model each.

Writers build a record and hand it to the store (:mod:`scalarize.runs.store`); readers get
records back, validated. The on-disk JSON is each record's ``dump()``; records written by
earlier releases of this schema still read (missing optional fields take their defaults).

=====================  ===========================================================
``RunSummary``         ``summary.json`` of a run (its ``test`` is an ``EvalResult``)
``EpochRecord``        one line of a run's ``metrics.jsonl``
``ConflictRecord``     one line of a run's ``conflicts.jsonl`` (the conflict probe)
``SweepPlan``          ``sweep.json``: the planned runs of a capacity × weights sweep
``ComparePlan``        ``compare.json``: the planned runs of a comparison
``SearchPlan``         ``search.json``: a search's strategy, engine and initial weights
``PopulationEvent``    one line of ``population.jsonl`` (epoch, exploit or diverged)
``SearchSummary``      ``summary.json`` of a search (with one ``MemberResult`` per member)
=====================  ===========================================================

Example:
    >>> result = EvalResult(acc={"a": 0.5}, loss={"a": 1.0}, avg_acc=0.5)
    >>> result.primary_value("a")
    (0.5, False)
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from scalarize.columns import Column as TableColumn  # the published table's column, once
from scalarize.weights import WeightsRecord


class Record(BaseModel):
    """Base of every record: validated on read, dumped to plain JSON types on write."""

    model_config = ConfigDict(extra="ignore", frozen=False)
    omit_when_none: ClassVar[frozenset[str]] = frozenset()  # optional keys left out when unset

    def dump(self) -> dict[str, Any]:
        """The record as written to disk (plain dicts, lists, numbers, strings)."""
        tree = self.model_dump(mode="python")
        for key in self.omit_when_none:
            if tree.get(key) is None:
                tree.pop(key, None)
        return tree

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.dump(), indent=indent)


class _Open(Record):
    """A record that callbacks may extend with keys of their own (kept as they are)."""

    model_config = ConfigDict(extra="allow")


class PrimaryMetric(Record):
    """The metric the multi-task gain compares for one objective."""

    metric: str = "score"
    higher_is_better: bool = True


class EvalResult(Record):
    """An evaluation of every objective on one split: ``acc`` (each objective's score, higher
    is better), mean ``loss``, ``avg_acc``, every named metric, and each objective's primary
    metric."""

    acc: dict[str, float]
    loss: dict[str, float] = Field(default_factory=dict)
    avg_acc: float
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    primary: dict[str, PrimaryMetric] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _primary_defaults_to_score(self) -> EvalResult:
        for name, score in self.acc.items():  # results from before dense tasks: accuracy
            self.primary.setdefault(name, PrimaryMetric())
            self.metrics.setdefault(name, {"score": score})
        return self

    def primary_value(self, objective: str) -> tuple[float, bool]:
        """``(value, lower_is_better)`` of ``objective``'s primary metric."""
        primary = self.primary[objective]
        return self.metrics[objective][primary.metric], not primary.higher_is_better


class LastValidation(Record):
    """The validation scores of a run's last epoch (``None`` before any epoch)."""

    acc: dict[str, float] | None = None
    loss: dict[str, float] | None = None
    avg_acc: float | None = None


class ModelInfo(Record):
    spec: str
    params: int
    encoder_params: int
    flops: int


class RunSummary(_Open):
    """``summary.json`` of a finished run."""

    run: str | None
    objectives: list[str]
    weights: WeightsRecord
    weights_label: str
    model: ModelInfo
    epochs: int
    steps: int
    val: LastValidation
    test: EvalResult
    best_epoch: int | None = None
    best_val_avg_acc: float | None = None
    train_seconds: float
    step_seconds: float
    peak_memory_mb: float | None = None
    device: str
    #: whether the encoder's training step ran through torch.compile (``None``: a run written
    #: before ``train.compile`` existed, which trained eagerly)
    compiled: bool | None = None
    #: the processes that trained it data-parallel (``scalarize train --nproc``); ``None``: one
    world_size: int | None = None

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"compiled", "world_size"})


class EpochRecord(_Open):
    """One epoch of a run (a line of ``metrics.jsonl``); probes add their epoch means."""

    epoch: int
    step: int
    lr: float
    train_loss: dict[str, float]
    train_objective: float
    val_acc: dict[str, float]
    val_loss: dict[str, float]
    val_metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    val_avg_acc: float
    weights: WeightsRecord
    epoch_seconds: float
    step_seconds: float


class ConflictRecord(Record):
    """One probed step of the gradient-conflict probe (see :mod:`scalarize.probes`). With the
    probe's own batch (``probes.conflicts.examples``), ``examples`` (per objective, per half)
    and the same-objective control (``control_cos`` per objective, ``control_cos_mean``,
    ``control_share``) are recorded too; records of the step's own batch (and older ones) have
    none of them."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({
        "layers", "examples", "control_cos", "control_cos_mean", "control_share"})

    step: int
    epoch: int
    objectives: list[str]
    cos: list[list[float]]
    cos_mean: float
    cos_min: float
    conflict_share: float
    gms_mean: float
    norms: list[float]
    cos_to_update: list[float]
    layers: dict[str, dict[str, Any]] | None = None
    examples: list[int] | None = None
    control_cos: list[float] | None = None
    control_cos_mean: float | None = None
    control_share: float | None = None


class PlannedRun(Record):
    """One run of a sweep and its role in the study; ``data`` labels its benchmark options
    when the sweep varies them (``data-n_train500``; ``data_axes`` holds their values)."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"data", "data_axes"})

    name: str
    capacity: str
    axes: dict[str, Any]
    weights: WeightsRecord
    weights_label: str
    single_task: str | None
    seed: int
    data: str | None = None
    data_axes: dict[str, Any] | None = None


class SweepPlan(Record):
    objectives: list[str]
    view: str = "mtl"
    runs: list[PlannedRun]

    def dump(self) -> dict[str, Any]:
        tree = super().dump()
        tree["runs"] = [run.dump() for run in self.runs]  # their own omissions
        return tree


class ComparedRun(Record):
    """One run of a comparison: its method label, method, seed and role, and, where the
    comparison lists architectures, its model's label."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"model"})
    name: str
    label: str
    method: str
    seed: int
    single_task: str | None
    model: str | None = None


class ComparePlan(Record):
    objectives: list[str]
    runs: list[ComparedRun]
    columns: list[TableColumn] = Field(default_factory=list)  # the benchmark's table, if any


class SearchPlan(Record):
    """``search.json``: what a search was set up to do."""

    strategy: str
    engine: str
    objectives: list[str]
    view: str = "mtl"
    population: int
    epochs: int
    interval: int
    initial_weights: list[list[float]]


class EpochEvent(Record):
    """A member finished an epoch: its weights and held-out scores."""

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"train_objective", "node"})

    event: Literal["epoch"] = "epoch"
    member: int
    epoch: int
    weights: WeightsRecord
    val_acc: dict[str, float]
    val_avg_acc: float
    train_objective: float | None = None
    seconds: float
    node: str | None = None


class ExploitEvent(Record):
    """At ``epoch``, ``member`` copied ``parent`` and moved to ``weights``."""

    event: Literal["exploit"] = "exploit"
    member: int
    epoch: int
    parent: int
    weights_before: WeightsRecord | None = None  # None only in Ray-engine folders of 0.1
    weights: WeightsRecord


class DivergedEvent(Record):
    """``member`` diverged during ``epoch`` (it is frozen until an exploit replaces it)."""

    event: Literal["diverged"] = "diverged"
    member: int
    epoch: int


PopulationEvent = Annotated[EpochEvent | ExploitEvent | DivergedEvent,
                            Field(discriminator="event")]
POPULATION_EVENT: TypeAdapter[EpochEvent | ExploitEvent | DivergedEvent] = TypeAdapter(
    PopulationEvent)


class MemberResult(Record):
    """A search member at the end: its schedule, lineage and scores (none if it diverged)."""

    member: int
    schedule: list[tuple[int, list[float]]]
    lineage: list[tuple[int, int]]
    diverged: bool
    weights: list[float]
    train_seconds: float
    val_acc: dict[str, float] | None = None
    val_avg_acc: float | None = None
    test_acc: dict[str, float] | None = None
    test_avg_acc: float | None = None
    stopped_epoch: int | None = None  # a trial stopped early (successive halving) at this epoch

    omit_when_none: ClassVar[frozenset[str]] = frozenset({"stopped_epoch"})


class SearchSummary(Record):
    """``summary.json`` of a finished search."""

    strategy: str
    engine: str
    objectives: list[str]
    population: int
    epochs: int
    member_epochs: int
    best_member: int
    best_weights: list[float]
    best_schedule: list[tuple[int, list[float]]]
    val_avg_acc: float
    test_acc: dict[str, float]
    test_avg_acc: float
    pareto_front: list[int]
    hypervolume_val: float
    hypervolume_test: float
    seconds: float
    train_seconds: float
    members: list[MemberResult]

    def dump(self) -> dict[str, Any]:
        tree = super().dump()
        tree["members"] = [member.dump() for member in self.members]  # their own omissions
        return tree
