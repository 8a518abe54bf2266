"""Methods, and architectures, side by side at equal budget (``scalarize compare CONFIG``).

A compare config is a run config plus a ``compare`` section::

    compare:
      methods:
        - static                                  # uniform scalarization
        - {name: static, weights: [0.7, 0.3], label: best-grid}
        - pcgrad
        - {name: cagrad, options: {c: 0.4}}
      seeds: [0, 1, 2]
      single_task: true                           # baselines for Δ

Every entry trains with the base config's epochs and seeds, so the budget is equal; results go
to one folder with ``compare.json`` naming each run's method label, seed and role.

Architectures side by side with methods (the comparison MTL papers make): ``models`` lists
model specs (or ``{spec, options, label}``), and every model trains with every method::

    compare:
      models: [resnet8-x0.5, mtan-resnet8-x0.5, cross-stitch-resnet8-x0.25, mmoe-e4-w64]
      methods: [static, uw, pcgrad]

An entry's ``options`` replace ``model.options`` (none when it gives none); its label (the
model's, e.g. ``mtan-resnet8-x0.5``, unless given) names its runs (``<model>-<method>-s0``) and
the table's ``model`` column. The single-task baselines train the base config's ``model``
(the single-task networks the gain Δ is measured against, one per objective and seed).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import Field

from scalarize.config import (
    MethodConfig,
    RunConfig,
    RunName,
    Seed,
    StudyConfig,
    _Section,
    load_study_config,
)
from scalarize.errors import ScalarizeError
from scalarize.methods import METHODS, refuse_ignored_weights
from scalarize.models import model_label
from scalarize.runs.layout import COMPARISON
from scalarize.runs.records import ComparedRun, ComparePlan, TableColumn
from scalarize.runs.store import StudyDir
from scalarize.studies.runner import run_planned
from scalarize.training import load_data
from scalarize.weights import WeightsSpec, parse_weights


class MethodEntry(_Section):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    weights: WeightsSpec | None = None
    label: RunName | None = Field(None, description="names the entry's run folders")


class ModelEntry(_Section):
    spec: str
    options: dict[str, Any] = Field(default_factory=dict)
    label: RunName | None = Field(None, description="names the model's runs and table rows")


class CompareSpec(_Section):
    models: list[str | ModelEntry] = Field(
        default_factory=list, description="architectures to train with every method (none: "
                                          "the base config's model only)")
    methods: list[str | MethodEntry] = Field(min_length=1)
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    single_task: bool = True


class CompareConfig(StudyConfig):
    """A run config (shared by every entry) plus its ``compare`` section."""

    compare: CompareSpec


def load_compare_config(path: Path | str, overrides: list[str] | None = None) -> CompareConfig:
    """A compare config from YAML with overrides (see the module docstring)."""
    return load_study_config(CompareConfig, "compare", "configs/compare_shapes.yaml", path,
                             overrides)


def plan_compare(config: CompareConfig, objectives: tuple[str, ...]
                 ) -> list[tuple[ComparedRun, RunConfig]]:
    """Every run: each method entry per seed, plus the single-task baselines."""
    entries = [MethodEntry(name=m) if isinstance(m, str) else m for m in config.compare.methods]
    for entry in entries:
        METHODS.get(entry.name)  # unknown names fail before anything trains
        if entry.weights is not None:
            refuse_ignored_weights(entry.name, config,
                                   f"compare entry {entry.label or entry.name!r}")
    base = config.base()
    plan: list[tuple[ComparedRun, RunConfig]] = []
    labels = [e.label or e.name for e in entries]
    if len(set(labels)) != len(labels):
        raise ScalarizeError(f"compare entries share labels {labels}; give each a 'label'")
    models = _models(config.compare.models)
    for seed in config.compare.seeds:
        for model, model_config in models:
            for entry, label in zip(entries, labels, strict=True):
                weights = parse_weights(entry.weights if entry.weights is not None
                                        else base.scalarization.weights, objectives)
                name = f"{label}-s{seed}" if model is None else f"{model}-{label}-s{seed}"
                run = base.derive(seed=seed, name=name, weights=weights,
                                  method=MethodConfig(name=entry.name, options=entry.options))
                if model_config is not None:
                    run = run.model_copy(update={"model": base.model.model_copy(
                        update={"spec": model_config.spec,
                                "options": dict(model_config.options)})})
                plan.append((ComparedRun(name=name, label=label, method=entry.name,
                                         seed=seed, single_task=None, model=model), run))
        if config.compare.single_task:
            for objective in objectives:
                name = f"single-{objective}-s{seed}"
                plan.append((
                    ComparedRun(name=name, label=f"single-{objective}", method="static",
                                seed=seed, single_task=objective),
                    base.derive(seed=seed, name=name, weights=f"onehot:{objective}",
                                method=MethodConfig())))
    return plan


def _models(models: list[str | ModelEntry]) -> list[tuple[str | None, ModelEntry | None]]:
    """Each model's label and entry; one ``(None, None)`` (the base config's model) when the
    comparison lists none."""
    if not models:
        return [(None, None)]
    entries = [ModelEntry(spec=m) if isinstance(m, str) else m for m in models]
    labels = [e.label or model_label(e.spec, e.options) for e in entries]
    if len(set(labels)) != len(labels):
        raise ScalarizeError(f"compare models share labels {labels}; give each a 'label'")
    return list(zip(labels, entries, strict=True))


def run_compare(config: CompareConfig, out: Path | str, engine: str = "local",
                engine_options: dict[str, Any] | None = None, progress: bool | None = None
                ) -> list[ComparedRun]:
    """Run (or continue) the comparison into ``out``; returns its plan."""
    data = load_data(config.base())
    plan = plan_compare(config, data.objectives)
    columns = [TableColumn(**asdict(c)) for c in data.columns]  # the published table's
    record = ComparePlan(objectives=list(data.objectives), runs=[p for p, _ in plan],
                         columns=columns)
    run_planned(StudyDir(out, COMPARISON), config, record, [c for _, c in plan], engine,
                engine_options, progress)
    return [p for p, _ in plan]
