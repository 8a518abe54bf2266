"""Shared fixtures: an isolated data cache and tiny, fast configs."""

from __future__ import annotations

import pytest

from scalarize.config import RunConfig, load_config

TINY = [
    "model.spec=vit-d1-w16-p8",
    "benchmark.options={n_train: 96, n_val: 32, n_test: 32, image_size: 16}",
    "train.epochs=2",
    "train.batch_size=32",
    "train.device=cpu",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SCALARIZE_CACHE", str(tmp_path_factory.mktemp("cache")))
    # studies run in this process (monkeypatches and callbacks reach them); the side-by-side
    # runs of the local engine are tested with an explicit jobs=2 (tests/engines/test_local_pool)
    monkeypatch.setenv("SCALARIZE_JOBS", "1")


def tiny_config(*overrides: str) -> RunConfig:
    """A config that trains in well under a second."""
    return load_config(None, [*TINY, *overrides])
