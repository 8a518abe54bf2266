"""Trained runs shared by the tests of scalarize.trained: each trains once per module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalarize.launch import train_run
from scalarize.runs.store import RunDir
from scalarize.training import Trainer
from tests.conftest import tiny_config

ONE_EPOCH = ["train.epochs=1", "benchmark.options={n_train: 64, n_val: 16, n_test: 24, "
             "image_size: 16}"]
MDL = ["benchmark.view=mdl", "train.epochs=1",
       "benchmark.options={n_train: [24, 16, 12, 12], n_val: 8, n_test: 12, image_size: 16}"]


def train(folder, *overrides):
    """Train a tiny run into ``folder``; its folder."""
    summary = train_run(tiny_config(*ONE_EPOCH, *overrides), folder, progress=False)
    return folder / str(summary.run)


def trainer_outputs(folder) -> dict[str, torch.Tensor]:
    """Each head's outputs on the test split as the trainer's evaluation computes them, with the
    run's checkpoint loaded: what a loaded run must reproduce."""
    run = RunDir(folder)
    from scalarize.config import RunConfig

    trainer = Trainer(RunConfig.model_validate(run.read_config()), progress=False)
    trainer.model.load_state_dict(run.load_checkpoint()["model"])
    trainer.model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for batch in trainer.splits["test"].sequential(7):
            for name, out in trainer._forward(batch)[1].outputs.items():
                parts.setdefault(name, []).append(out.float())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("vit"), "model.spec=vit-d1-w16-p8")


@pytest.fixture(scope="module")
def mdl_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("mdl"), *MDL)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float((predicted == labels).mean())
