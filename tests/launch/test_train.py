"""Training into a run folder: a killed run resumes to the numbers of an uninterrupted one."""

import json

import pytest

from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.training import Callback
from tests.conftest import tiny_config


class _Kill(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt


@pytest.mark.parametrize(("view", "compiled"), [("mtl", "false"), ("mdl", "false"),
                                               ("mtl", "true")])
def test_resume_equals_uninterrupted(tmp_path, view, compiled):
    options = ("benchmark.options={n_train: 96, n_val: 32, n_test: 32, image_size: 16}"
               if view == "mtl" else
               "benchmark.options={n_train: [48, 24, 12, 12], n_val: 8, n_test: 8, "
               "image_size: 16}")
    cfg = tiny_config("train.epochs=3", f"benchmark.view={view}", options,
                      "model.spec=resnet8-x0.25", f"train.compile={compiled}")
    whole = train_run(cfg, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "b", callbacks=[_Kill()], progress=False)
    run = RunDir(tmp_path / "b" / whole.run)
    assert not run.is_complete and len(run.read_metrics()) == 1  # killed before writing 2
    resumed = train_run(cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.test == whole.test
    lines = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    whole_lines = RunDir(tmp_path / "a" / whole.run).read_metrics()
    assert [r["val_loss"] for r in lines] == [r.val_loss for r in whole_lines]


def test_resume_drops_metrics_past_the_checkpoint(tmp_path):
    cfg = tiny_config("train.epochs=2")
    summary = train_run(cfg, tmp_path, progress=False)
    run = RunDir(tmp_path / summary.run)
    (run.path / "summary.json").unlink()
    run.append_metrics(run.read_metrics()[-1].model_copy(update={"epoch": 3}))
    train_run(cfg, tmp_path, resume=True, progress=False)
    assert [r.epoch for r in run.read_metrics()] == [1, 2]


def test_a_run_from_before_a_new_config_field_still_resumes(tmp_path):
    import yaml

    cfg = tiny_config("train.epochs=2")
    summary = train_run(cfg, tmp_path, progress=False)
    run = RunDir(tmp_path / summary.run)
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    del saved["smoke"], saved["train"]["augment"]  # fields added after such runs were made
    (run.path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert train_run(cfg, tmp_path, resume=True, progress=False) == summary
    with pytest.raises(ScalarizeError, match="differs from this config"):
        train_run(tiny_config("train.epochs=2", "train.lr=0.5"), tmp_path, resume=True,
                  progress=False)


def test_train_nproc_other_than_torchruns_processes_is_refused_in_one_line(tmp_path,
                                                                          monkeypatch):
    from scalarize.config import load_config

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(ScalarizeError, match=r"^--nproc \(train\.nproc\) 3 under torchrun, "
                       "which already started 2 processes"):
        train_run(load_config(None, ["train.nproc=3"]), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
