"""A run's folder name: ``<benchmark>-<view>-<model>-<weights>-<method>-s<seed>``."""

from __future__ import annotations

from collections.abc import Sequence

from scalarize.config import RunConfig
from scalarize.models import model_label
from scalarize.registry import target_label
from scalarize.weights import SimplexWeights, parse_weights


def default_run_name(config: RunConfig, objectives: Sequence[str]) -> str:
    """``<benchmark>-<view>-<model>-<weights>-<method>-s<seed>``, unless ``config.name`` is set.

    It is one safe folder name: an import target stands for its attribute
    (``mypkg.data:load_mine`` -> ``load_mine``) and the model for its label with its options
    (``mymodels:build`` with ``{width: 64}`` -> ``build-width64``, see
    :func:`~scalarize.models.model_label`)."""
    if config.name:
        return config.name
    return run_name(config, parse_weights(config.scalarization.weights, objectives))


def run_name(config: RunConfig, weights: SimplexWeights) -> str:
    """:func:`default_run_name` with the config's weights already parsed (a plan's)."""
    if config.name:
        return config.name
    parts = [target_label(config.benchmark.name), config.benchmark.view,
             model_label(config.model.spec, config.model.options), weights.label(),
             target_label(config.method.name), f"s{config.seed}"]
    return "-".join(parts)


__all__ = ["default_run_name", "run_name"]
