"""TensorBoard tracking, read back with TensorBoard's own event reader."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="the tracking extra is not installed")

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from scalarize.config import TrackingConfig
from scalarize.launch import train_run
from scalarize.runs import RunDir, SearchDir
from scalarize.studies.sweep import load_sweep_config, run_sweep
from scalarize.tracking import track_search
from tests.conftest import tiny_config
from tests.tracking.conftest import kill_after_logging


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events


def _scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in _events(folder).Scalars(tag)]


def _texts(folder: Path, tag: str) -> list[tuple[int, str]]:
    return [(e.step, e.tensor_proto.string_val[0].decode())
            for e in _events(folder).Tensors(f"{tag}/text_summary")]


def test_a_run_logs_every_epoch_conflicts_its_config_and_summary(tmp_path):
    config = tiny_config("train.epochs=2", "probes={conflicts: {every: 1}}",
                         f"tracking.tensorboard={tmp_path / 'tb'}")
    summary = train_run(config, tmp_path / "runs", progress=False)
    folder = tmp_path / "tb" / summary.run
    records = RunDir(tmp_path / "runs" / summary.run).read_metrics()
    tags = set(_events(folder).Tags()["scalars"])
    objectives = summary.objectives
    assert {f"train_loss/{o}" for o in objectives} | {f"weights/{o}" for o in objectives} <= tags
    assert {"lr", "epoch_seconds", "conflict_share", "cos_mean", "gms_mean"} <= tags
    val = _scalars(folder, "val_avg_acc")
    assert [s for s, _ in val] == [1, 2]
    assert [v for _, v in val] == pytest.approx([r.val_avg_acc for r in records])
    assert _scalars(folder, "test/avg_acc") == [(2, pytest.approx(summary.test.avg_acc))]
    [(step, table)] = _texts(folder, "config")
    assert step == 0 and "model.spec" in table and "vit-d1-w16-p8" in table
    assert '"avg_acc"' in _texts(folder, "summary.json")[0][1]


def test_a_sweep_logs_one_folder_per_run_under_the_study(sweep_file, tmp_path):
    config = load_sweep_config(sweep_file, [f"tracking.tensorboard={tmp_path / 'tb'}"])
    plan = run_sweep(config, tmp_path / "my-sweep", progress=False)
    folders = sorted(p.name for p in (tmp_path / "tb" / "my-sweep").iterdir())
    assert folders == sorted(p.name for p in plan)
    for name in folders:
        assert [s for s, _ in _scalars(tmp_path / "tb" / "my-sweep" / name, "val_avg_acc")
                ] == [1]


def test_a_pbt_search_logs_members_and_exploits(finished_search, tmp_path):
    out = finished_search
    tracking = TrackingConfig(tensorboard=str(tmp_path / "tb"))
    track_search(out, tracking)
    track_search(out, tracking)  # again: each epoch and each text is shown once
    root = tmp_path / "tb" / "pbt"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["m00", "m01", "m02", "m03"]
    for member in range(4):
        steps = [s for s, _ in _scalars(root / f"m{member:02d}", "val_avg_acc")]
        assert steps == [1, 2, 3, 4]
    exploits = [e for e in SearchDir(out).read_events() if e.event == "exploit"]
    assert exploits
    texts = _texts(root, "exploits")
    assert sorted({e.epoch for e in exploits}) == [step for step, _ in texts]
    shown = "\n".join(text for _, text in texts)
    for event in exploits:
        assert f"m{event.member:02d} copied m{event.parent:02d}" in shown
        parents = _scalars(root / f"m{event.member:02d}", "exploit/parent")
        assert (event.epoch, float(event.parent)) in parents
    summary = SearchDir(out).read_summary()
    assert _scalars(root, "test/avg_acc") == [(4, pytest.approx(summary.test_avg_acc))]


def test_resume_shows_each_epoch_once(tmp_path, monkeypatch):
    config = tiny_config("train.epochs=3", f"tracking.tensorboard={tmp_path / 'tb'}")
    kill_after_logging(monkeypatch, epoch=2)  # epoch 2 logged, its checkpoint never written
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "runs", progress=False)
    summary = train_run(config, tmp_path / "runs", resume=True, progress=False)
    folder = tmp_path / "tb" / summary.run
    records = RunDir(tmp_path / "runs" / summary.run).read_metrics()
    val = _scalars(folder, "val_avg_acc")
    assert [s for s, _ in val] == [1, 2, 3]
    assert [v for _, v in val] == pytest.approx([r.val_avg_acc for r in records])
    assert [s for s, _ in _texts(folder, "config")] == [0]


def test_run_search_tracks_a_search_from_its_config(finished_search, tmp_path):
    """``run_search`` (the command and the Python API) logs the search when its config asks:
    here a finished search met again with tracking switched on (tracking is not identity)."""
    from scalarize.search.spec import load_search_config
    from scalarize.studies.runner import run_search
    from tests.tracking.conftest import SEARCH

    (tmp_path / "search.yaml").write_text(SEARCH)
    config = load_search_config(tmp_path / "search.yaml",
                                [f"tracking.tensorboard={tmp_path / 'tb'}"])
    summary = run_search(config, finished_search, progress=False)
    root = tmp_path / "tb" / "pbt"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["m00", "m01", "m02", "m03"]
    assert _scalars(root, "test/avg_acc") == [(4, pytest.approx(summary.test_avg_acc))]
