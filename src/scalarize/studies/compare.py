"""Methods side by side at equal budget (``scalarize compare CONFIG``).

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


class CompareSpec(_Section):
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
    for seed in config.compare.seeds:
        for entry, label in zip(entries, labels, strict=True):
            weights = parse_weights(entry.weights if entry.weights is not None
                                    else base.scalarization.weights, objectives)
            name = f"{label}-s{seed}"
            plan.append((
                ComparedRun(name=name, label=label, method=entry.name, seed=seed,
                            single_task=None),
                base.derive(seed=seed, name=name, weights=weights,
                            method=MethodConfig(name=entry.name, options=entry.options))))
        if config.compare.single_task:
            for objective in objectives:
                name = f"single-{objective}-s{seed}"
                plan.append((
                    ComparedRun(name=name, label=f"single-{objective}", method="static",
                                seed=seed, single_task=objective),
                    base.derive(seed=seed, name=name, weights=f"onehot:{objective}",
                                method=MethodConfig())))
    return plan


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
