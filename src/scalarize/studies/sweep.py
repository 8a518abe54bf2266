"""Capacity × weights sweeps (``scalarize sweep CONFIG``).

A sweep config is a run config plus a ``sweep`` section::

    sweep:
      capacities: {template: "vit-d{depth}-w{width}-p4", axes: {depth: [3, 6], width: [48, 96]}}
      weights: {step: 0.1}          # or {points: [...]} or {random: 20, alpha: 1.0}
      single_task: true             # one onehot baseline per objective per capacity
      seeds: [0, 1, 2]
      vary_data: true               # each seed draws its own data too (benchmark.seed = seed)

``capacities`` may also be a plain list of model specs, or range over the options of a model
factory (``model.options``; see docs/extending.md), their cross product::

    model: {spec: mymodels:build}
    sweep:
      capacities: {options: {width: [32, 64], depth: [2, 4]}}   # spec: defaults to model.spec

Each such capacity is labelled by the spec's name and its option values
(``build-depth2-width32``), and its axes are the option values. ``data`` varies the benchmark's
options the same way (merged over ``benchmark.options``), e.g. the training-set size::

    sweep:
      data: {options: {n_train: [500, 2000, 8000]}}

Each run at such a setting is named with its label (``...-s0-data-n_train500``) and records it
(``PlannedRun.data``, ``data_axes``), so the analysis compares every run with the single-task
runs of its own data setting and capacity. The plan is the cross product
of capacities, weightings (plus the single-task baselines) and seeds; ``sweep.json`` in the
output folder records it, so the analysis knows each run's capacity axes and role.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from scalarize.config import RunConfig, Seed, StudyConfig, _Section, load_study_config
from scalarize.errors import ScalarizeError
from scalarize.launch import default_run_name
from scalarize.methods import refuse_ignored_weights
from scalarize.models import model_label
from scalarize.runs.layout import SWEEP
from scalarize.runs.records import PlannedRun, SweepPlan
from scalarize.runs.store import StudyDir
from scalarize.search.simplex import simplex_grid
from scalarize.studies.runner import run_planned
from scalarize.training import load_data
from scalarize.weights import WeightsSpec, parse_weights


def dirichlet_points(n_objectives: int, n_points: int, alpha: float = 1.0, seed: int = 0
                     ) -> list[tuple[float, ...]]:
    """A sweep's random weights: ``n_points`` seeded samples from a symmetric Dirichlet(α)
    (α = 1: uniform on the simplex), rounded to 4 decimals so that run names stay short."""
    if alpha <= 0:
        raise ScalarizeError(f"Dirichlet alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    samples = rng.dirichlet([alpha] * n_objectives, size=n_points)
    out = []
    for row in samples:
        rounded = np.round(row, 4)
        rounded[np.argmax(rounded)] += 1.0 - rounded.sum()
        out.append(tuple(float(v) for v in np.round(rounded, 4)))
    return out


class CapacityGrid(_Section):
    """Model specs from a template and the values of its axes (their cross product)."""

    template: str
    axes: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _axes_in_template(self) -> CapacityGrid:
        unused = [name for name in self.axes if "{" + name + "}" not in self.template]
        if unused:
            raise ValueError(f"axes {unused} do not appear in template {self.template!r}; "
                             "write them as {name} in it or drop them")
        return self

    def specs(self) -> list[tuple[str, dict[str, Any]]]:
        names = list(self.axes)
        out = []
        for values in itertools.product(*(self.axes[n] for n in names)):
            axes = dict(zip(names, values, strict=True))
            try:
                out.append((self.template.format(**axes), axes))
            except KeyError as exc:
                raise ScalarizeError(f"capacity template names axis {exc} that is not in "
                                     f"axes {names}") from None
        return out


class DataGrid(_Section):
    """Benchmark options to vary (``sweep.data``): the cross product of each option's values,
    merged over ``benchmark.options`` (e.g. ``{options: {n_train: [500, 2000, 8000]}}``)."""

    options: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _values_once(self) -> DataGrid:
        for name, values in self.options.items():
            seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
            if len(set(seen)) != len(seen):
                raise ValueError(f"options.{name} lists a value more than "
                                 "once; list each once")
        return self

    def specs(self) -> list[dict[str, Any]]:
        """Every combination of option values."""
        names = list(self.options)
        return [dict(zip(names, values, strict=True))
                for values in itertools.product(*(self.options[n] for n in names))]


class OptionsGrid(DataGrid):
    """Capacities from a model factory's options: the cross product of each option's values,
    merged over ``model.options``; ``spec`` is the factory (``model.spec`` when unset)."""

    spec: str | None = None


class WeightGrid(_Section):
    """Which weightings to train: a regular simplex grid, explicit points, or a Dirichlet
    sample (for many objectives); uniform is always included unless switched off."""

    step: float | None = None
    points: list[Any] | None = None
    random: int | None = Field(None, ge=1)
    alpha: float = Field(1.0, gt=0)
    seed: Seed = 0
    include_uniform: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> WeightGrid:
        given = [x is not None for x in (self.step, self.points, self.random)]
        if sum(given) > 1:
            raise ValueError("give one of step, points or random")
        return self

    def specs(self, n_objectives: int) -> list[WeightsSpec]:
        specs: list[WeightsSpec] = ["uniform"] if self.include_uniform else []
        if self.step is not None:
            specs += [list(p) for p in simplex_grid(n_objectives, self.step)]
        elif self.random is not None:
            specs += [list(p) for p in dirichlet_points(n_objectives, self.random, self.alpha,
                                                        self.seed)]
        elif self.points is not None:
            specs += self.points
        return specs


def _capacity_form(value: Any) -> str:
    """Which form of ``capacities`` a value is written in (so errors speak of that one)."""
    if isinstance(value, OptionsGrid) or (isinstance(value, dict) and "options" in value):
        return "OptionsGrid"
    return "CapacityGrid" if isinstance(value, dict | CapacityGrid) else "List"


Capacities = Annotated[
    Annotated[Annotated[list[str], Field(min_length=1)], Tag("List")]
    | Annotated[CapacityGrid, Tag("CapacityGrid")] | Annotated[OptionsGrid, Tag("OptionsGrid")],
    Discriminator(_capacity_form)]


class SweepSpec(_Section):
    capacities: Capacities
    data: DataGrid | None = None
    weights: WeightGrid = Field(default_factory=WeightGrid)
    single_task: bool = True
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    #: each seed draws its own data (``benchmark.seed`` = the run seed), so that seeds vary the
    #: data draw as well as the initialisation and batch order; off: every run shares
    #: ``benchmark.seed``'s draw
    vary_data: bool = False

    @model_validator(mode="after")
    def _each_once(self) -> SweepSpec:
        listed: list[tuple[str, list[Any]]] = [("seeds", list(self.seeds))]
        if isinstance(self.capacities, list):
            listed.append(("capacities", list(self.capacities)))
        for name, values in listed:
            if len(set(values)) != len(values):
                twice = sorted({v for v in values if values.count(v) > 1})
                raise ValueError(f"sweep.{name} lists {twice} more than once; list each once")
        return self


class SweepConfig(StudyConfig):
    """A run config (the base of every run) plus its ``sweep`` section."""

    sweep: SweepSpec


def load_sweep_config(path: Path | str, overrides: list[str] | None = None) -> SweepConfig:
    """A sweep config from YAML with overrides (see the module docstring)."""
    return load_study_config(SweepConfig, "sweep", "configs/shapes_capacity.yaml", path,
                             overrides)


def plan_sweep(config: SweepConfig, objectives: tuple[str, ...]
               ) -> list[tuple[PlannedRun, RunConfig]]:
    """Every run of the sweep (duplicates, e.g. grid corners equal to baselines, once)."""
    spec = config.sweep
    # (model spec, options replacing model.options' or None, capacity label, axes)
    capacities: list[tuple[str, dict[str, Any] | None, str, dict[str, Any]]]
    if isinstance(spec.capacities, list):
        capacities = [(s, None, s, {"spec": s}) for s in spec.capacities]
    elif isinstance(spec.capacities, CapacityGrid):
        capacities = [(s, None, s, axes) for s, axes in spec.capacities.specs()]
    else:
        factory = spec.capacities.spec or config.model.spec
        capacities = [(factory, {**config.model.options, **values},
                       model_label(factory, values), values)
                      for values in spec.capacities.specs()]
    weightings = [parse_weights(w, objectives) for w in spec.weights.specs(len(objectives))]
    if len({w.values for w in weightings}) > 1:
        refuse_ignored_weights(config.method.name, config, "the sweep's weights grid")
    if spec.single_task:
        weightings += [parse_weights(f"onehot:{o}", objectives) for o in objectives]
    base = config.base()
    data_axes: list[dict[str, Any] | None] = (
        [None] if spec.data is None else list(spec.data.specs()))
    plan: dict[str, tuple[PlannedRun, RunConfig]] = {}
    for seed, data, (model_spec, options, capacity, axes), weights in itertools.product(
            spec.seeds, data_axes, capacities, weightings):
        run_config = base.derive(seed=seed, spec=model_spec, weights=weights, name=None)
        if spec.vary_data:
            run_config = run_config.model_copy(update={"benchmark": run_config.benchmark.model_copy(
                update={"seed": seed})})
        if options is not None:
            run_config = run_config.model_copy(update={"model": run_config.model.model_copy(
                update={"options": options})})
        name = default_run_name(run_config, objectives)
        data_label = None
        if data is not None:
            data_label = model_label("data", data)
            name = f"{name}-{data_label}"
            benchmark = run_config.benchmark.model_copy(
                update={"options": {**run_config.benchmark.options, **data}})
            run_config = run_config.model_copy(update={"benchmark": benchmark, "name": name})
        single = objectives[weights.values.index(1.0)] if weights.is_single_task else None
        planned = PlannedRun(name=name, capacity=capacity, axes=axes,
                             weights=weights, weights_label=weights.label(),
                             single_task=single, seed=seed, data=data_label, data_axes=data)
        plan.setdefault(name, (planned, run_config))
    if not plan:
        raise ScalarizeError("the sweep plans no runs: its weights grid is empty and "
                             "single_task is off; give sweep.weights points or a step")
    return list(plan.values())


def run_sweep(config: SweepConfig, out: Path | str, engine: str = "local",
              engine_options: dict[str, Any] | None = None, progress: bool | None = None
              ) -> list[PlannedRun]:
    """Run (or continue) the sweep into ``out``; returns its plan."""
    data = load_data(config.base())
    plan = plan_sweep(config, data.objectives)
    record = SweepPlan(objectives=list(data.objectives), view=data.view,
                       runs=[p for p, _ in plan])
    run_planned(StudyDir(out, SWEEP), config, record, [c for _, c in plan], engine,
                engine_options, progress)
    return [p for p, _ in plan]
