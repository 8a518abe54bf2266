"""MLflow tracking, read back with MLflow's own client from a SQLite store."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("mlflow", reason="the tracking extra is not installed")

from mlflow.tracking import MlflowClient

from scalarize.config import TrackingConfig
from scalarize.launch import train_run
from scalarize.runs import RunDir, SearchDir
from scalarize.studies.replay import replay_config
from scalarize.studies.sweep import load_sweep_config, run_sweep
from scalarize.tracking import TrackingWarning, track_search, with_tracking
from tests.conftest import tiny_config
from tests.tracking.conftest import kill_after_logging


def _runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("scalarize")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _steps(uri: str, run, key: str) -> list[int]:
    return [m.step for m in MlflowClient(uri).get_metric_history(run.info.run_id, key)]


def test_a_run_logs_its_config_every_epoch_its_schedule_conflicts_and_summary(tmp_path,
                                                                            mlflow_uri):
    uri = mlflow_uri
    config = tiny_config("train.epochs=3", "benchmark.tasks=[shape, count]",
                         "scalarization.schedule=[[0, [0.8, 0.2]], [2, [0.3, 0.7]]]",
                         "probes={conflicts: {every: 1}}", f"tracking.mlflow={uri}")
    summary = train_run(config, tmp_path / "runs", progress=False)
    [run] = _runs(uri)
    assert run.info.run_name == summary.run and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.spec"] == "vit-d1-w16-p8" and params["train.epochs"] == "3"
    assert json.loads(params["scalarization.schedule"]) == [[0, [0.8, 0.2]], [2, [0.3, 0.7]]]
    assert not any(k.startswith("tracking") for k in params)  # an observer, not the run
    client = MlflowClient(uri)
    records = RunDir(tmp_path / "runs" / summary.run).read_metrics()
    for key in ("val_avg_acc", "lr", "epoch_seconds", "train_loss/shape", "val_acc/count",
                "val_loss/shape", "val_metrics/count/score", "weights/shape",
                "conflict_share", "cos_mean", "gms_mean"):
        assert _steps(uri, run, key) == [1, 2, 3], key
    shape = [m.value for m in client.get_metric_history(run.info.run_id, "weights/shape")]
    assert shape == pytest.approx([0.8, 0.8, 0.3])  # the schedule, epoch by epoch
    val = [m.value for m in client.get_metric_history(run.info.run_id, "val_avg_acc")]
    assert val == pytest.approx([r.val_avg_acc for r in records])
    metrics = run.data.metrics
    assert metrics["test/avg_acc"] == pytest.approx(summary.test.avg_acc)
    assert metrics["test/acc/count"] == pytest.approx(summary.test.acc["count"])
    assert metrics["model/params"] == summary.model.params
    assert metrics["step_seconds"] == pytest.approx(summary.step_seconds)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"schedule.json", "summary.json"} <= artifacts


def test_a_sweep_logs_one_parent_with_its_runs_nested(sweep_file, tmp_path, mlflow_uri):
    uri = mlflow_uri
    config = load_sweep_config(sweep_file, [f"tracking.mlflow={uri}"])
    plan = run_sweep(config, tmp_path / "sweep", progress=False)
    runs = _runs(uri)
    [parent] = [r for r in runs if "scalarize.study" in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert parent.data.tags["scalarize.study"] == str((tmp_path / "sweep").resolve())
    assert parent.info.run_name == "sweep" and parent.info.status == "FINISHED"
    assert parent.data.params["sweep.seeds"] == "[0]"  # the study's config
    assert sorted(r.info.run_name for r in children) == sorted(p.name for p in plan)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all(_steps(uri, r, "val_avg_acc") == [1] for r in children)


def test_a_pbt_search_logs_members_nested_with_their_exploits(finished_search, tmp_path,
                                                              mlflow_uri):
    uri = mlflow_uri
    out = finished_search
    tracking = TrackingConfig(mlflow=uri)
    track_search(out, tracking)
    track_search(out, tracking)  # again: nothing logged twice
    # a replay of the search is a run in the search folder: nested under the same parent
    replayed = train_run(with_tracking(replay_config(out, "best"), [f"mlflow={uri}"]), out,
                         progress=False)
    runs = _runs(uri)
    [parent] = [r for r in runs if "scalarize.study" in r.data.tags]
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert set(children) == {"m00", "m01", "m02", "m03", replayed.run}
    assert {r.data.tags["mlflow.parentRunId"] for r in children.values()} == {
        parent.info.run_id}
    assert parent.info.status == "FINISHED"
    summary = SearchDir(out).read_summary()
    assert parent.data.metrics["test/avg_acc"] == pytest.approx(summary.test_avg_acc)
    exploits = [e for e in SearchDir(out).read_events() if e.event == "exploit"]
    assert exploits, "PBT with 4 members and 3 exploit steps exploited nobody"
    tags = {k: v for k, v in parent.data.tags.items() if k.startswith("exploit.")}
    assert len(tags) == len(exploits)
    for event in exploits:
        text = tags[f"exploit.e{event.epoch:03d}.m{event.member:02d}"]
        assert f"copied m{event.parent:02d}" in text
        member = children[f"m{event.member:02d}"]
        history = MlflowClient(uri).get_metric_history(member.info.run_id, "exploit/parent")
        assert (event.epoch, float(event.parent)) in [(m.step, m.value) for m in history]
    logged = json.loads(MlflowClient(uri).download_artifacts(
        parent.info.run_id, "exploits.json", str(tmp_path)) and
        (tmp_path / "exploits.json").read_text())
    assert [(e["member"], e["epoch"], e["parent"]) for e in logged] == [
        (e.member, e.epoch, e.parent) for e in exploits]
    for result in summary.members:
        member = children[f"m{result.member:02d}"]
        assert _steps(uri, member, "val_avg_acc") == [1, 2, 3, 4]
        assert json.loads(member.data.tags["scalarize.schedule"]) == [
            [e, list(w)] for e, w in result.schedule]


def test_a_broken_store_warns_once_and_training_finishes(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    broken = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    config = tiny_config(f"tracking.mlflow={broken}", f"tracking.tensorboard={tmp_path / 'tb'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_run(config, tmp_path / "runs", progress=False)
    tracking = [w for w in caught if issubclass(w.category, TrackingWarning)]
    assert len(tracking) == 1 and "mlflow" in str(tracking[0].message)
    assert RunDir(tmp_path / "runs" / summary.run).is_complete
    assert any((tmp_path / "tb" / summary.run).iterdir())  # the other backend went on


def test_resume_continues_the_same_run_and_logs_each_epoch_once(tmp_path, monkeypatch,
                                                               mlflow_uri):
    uri = mlflow_uri
    config = tiny_config("train.epochs=3", f"tracking.mlflow={uri}")
    kill_after_logging(monkeypatch, epoch=2)  # epoch 2 logged, its checkpoint never written
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "runs", progress=False)
    [run] = _runs(uri)
    assert run.info.status == "FAILED" and _steps(uri, run, "val_avg_acc") == [1, 2]
    summary = train_run(config, tmp_path / "runs", resume=True, progress=False)
    [run] = _runs(uri)
    assert run.info.status == "FINISHED"
    assert _steps(uri, run, "val_avg_acc") == [1, 2, 3]
    assert _steps(uri, run, "test/avg_acc") == [3]
    records = RunDir(tmp_path / "runs" / summary.run).read_metrics()
    values = [m.value for m in MlflowClient(uri).get_metric_history(run.info.run_id,
                                                                    "val_avg_acc")]
    assert values == pytest.approx([r.val_avg_acc for r in records])


def test_a_run_started_without_tracking_resumes_with_it(tmp_path, monkeypatch, mlflow_uri):
    """Tracking is not part of a run's identity: switching it on does not make the saved
    config differ, and the epochs trained before are logged from the checkpoint."""
    uri = mlflow_uri
    kill_after_logging(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        train_run(tiny_config("train.epochs=3"), tmp_path / "runs", progress=False)
    train_run(tiny_config("train.epochs=3", f"tracking.mlflow={uri}"), tmp_path / "runs",
              resume=True, progress=False)
    [run] = _runs(uri)
    assert _steps(uri, run, "val_avg_acc") == [1, 2, 3] and run.info.status == "FINISHED"


def test_runs_on_ray_workers_nest_under_one_parent(sweep_file, tmp_path, mlflow_uri,
                                                   monkeypatch):
    """Planned runs on Ray workers (other processes, another working folder) log to the same
    SQLite store and find the one parent the first of them made; relative locations in the
    config were made absolute where it was read."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.chdir(tmp_path)
    relative = mlflow_uri.replace(f"sqlite:///{tmp_path}/", "sqlite:///")
    config = load_sweep_config(sweep_file, [f"tracking.mlflow={relative}"])
    plan = run_sweep(config, tmp_path / "sweep", engine="ray", progress=False)
    runs = _runs(mlflow_uri)
    [parent] = [r for r in runs if "scalarize.study" in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert sorted(r.info.run_name for r in children) == sorted(p.name for p in plan)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)
