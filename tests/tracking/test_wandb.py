"""W&B in offline mode, only where wandb is installed (it is not a dependency of scalarize)."""

from __future__ import annotations

import hashlib
import warnings

import pytest

pytest.importorskip("wandb", reason="wandb is not installed (optional; not a dependency)")

from scalarize.launch import train_run
from scalarize.tracking import TrackingWarning
from tests.conftest import tiny_config


def test_a_run_logs_offline_with_its_epochs_and_summary(tmp_path):
    config = tiny_config("train.epochs=2", "probes={conflicts: {every: 1}}",
                         f"tracking.wandb={{project: p, mode: offline, dir: '{tmp_path}'}}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_run(config, tmp_path / "runs", progress=False)
    assert not [w for w in caught if issubclass(w.category, TrackingWarning)]
    run_id = hashlib.sha1(str((tmp_path / "runs" / summary.run).resolve()).encode()
                          ).hexdigest()[:16]  # stable: a resume continues the same W&B run
    [log] = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    data = log.read_bytes()  # W&B's record log: protobuf records, their strings as written
    for key in (b"val_avg_acc", b"train_loss/shape", b"weights/shape", b"conflict_share",
                b"test/avg_acc", b"model.spec", summary.run.encode()):
        assert key in data, key
