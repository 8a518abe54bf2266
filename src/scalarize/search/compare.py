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

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from scalarize.config import RunConfig, _Section, load_study_config
from scalarize.errors import ScalarizeError
from scalarize.methods import METHODS, method_uses_weights
from scalarize.search.executors import run_planned
from scalarize.training import load_data
from scalarize.weights import WeightsSpec, parse_weights

COMPARE_CONFIG = "compare.yaml"  # the plan goes to compare.json beside it


class MethodEntry(_Section):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    weights: WeightsSpec | None = None
    label: str | None = None


class CompareSpec(_Section):
    methods: list[str | MethodEntry] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    single_task: bool = True


class CompareConfig(RunConfig):
    """A run config (shared by every entry) plus its ``compare`` section."""

    compare: CompareSpec

    def base(self) -> RunConfig:
        return RunConfig.model_validate(self.model_dump(exclude={"compare"}))


def load_compare_config(path: Path | str, overrides: list[str] | None = None) -> CompareConfig:
    """A compare config from YAML with overrides (see the module docstring)."""
    return load_study_config(CompareConfig, "compare", "configs/compare_shapes.yaml", path,
                             overrides)


@dataclass
class ComparedRun:
    name: str
    label: str
    method: str
    seed: int
    single_task: str | None


def plan_compare(config: CompareConfig, objectives: tuple[str, ...]
                 ) -> list[tuple[ComparedRun, RunConfig]]:
    """Every run: each method entry per seed, plus the single-task baselines."""
    entries = [MethodEntry(name=m) if isinstance(m, str) else m for m in config.compare.methods]
    # weights act on the loss, except with MDL data resampling (there they set every batch)
    on_loss = config.benchmark.view == "mtl" or config.scalarization.mdl_mode == "loss"
    for entry in entries:
        METHODS.get(entry.name)  # unknown names fail before anything trains
        if entry.weights is not None and on_loss and not method_uses_weights(entry.name):
            raise ScalarizeError(
                f"compare entry {entry.label or entry.name!r} gives weights, but {entry.name} "
                "ignores the scalarization weights (it chooses its own); remove 'weights' from "
                "that entry")
    base = config.base().model_dump(mode="json")
    plan: list[tuple[ComparedRun, RunConfig]] = []
    labels = [e.label or e.name for e in entries]
    if len(set(labels)) != len(labels):
        raise ScalarizeError(f"compare entries share labels {labels}; give each a 'label'")
    for seed in config.compare.seeds:
        for entry, label in zip(entries, labels, strict=True):
            tree = json.loads(json.dumps(base))
            weights = entry.weights if entry.weights is not None else tree["scalarization"][
                "weights"]
            tree.update(seed=seed, name=f"{label}-s{seed}")
            tree["method"] = {"name": entry.name, "options": entry.options}
            tree["scalarization"]["weights"] = list(parse_weights(weights, objectives).values)
            plan.append((ComparedRun(f"{label}-s{seed}", label, entry.name, seed, None),
                         RunConfig.model_validate(tree)))
        if config.compare.single_task:
            for objective in objectives:
                tree = json.loads(json.dumps(base))
                name = f"single-{objective}-s{seed}"
                tree.update(seed=seed, name=name)
                tree["method"] = {"name": "static", "options": {}}
                tree["scalarization"]["weights"] = f"onehot:{objective}"
                plan.append((ComparedRun(name, f"single-{objective}", "static", seed, objective),
                             RunConfig.model_validate(tree)))
    return plan


def run_compare(config: CompareConfig, out: Path | str, engine: str = "local",
                engine_options: dict[str, Any] | None = None, progress: bool | None = None
                ) -> list[ComparedRun]:
    """Run (or continue) the comparison into ``out``; returns its plan."""
    data = load_data(config.base())
    plan = plan_compare(config, data.objectives)
    manifest = {"objectives": list(data.objectives), "runs": [asdict(p) for p, _ in plan]}
    run_planned(Path(out), COMPARE_CONFIG, config, manifest, [c for _, c in plan],
                engine, engine_options, progress)
    return [p for p, _ in plan]
