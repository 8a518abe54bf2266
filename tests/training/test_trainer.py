import json

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.training import Callback, Trainer, TrainingDiverged
from tests.conftest import tiny_config


def test_loss_goes_down_on_shapes():
    cfg = tiny_config("train.epochs=8", "train.lr=3e-3", "model.spec=resnet8-x0.5",
                      "benchmark.tasks=[colour, count]",
                      "benchmark.options={n_train: 1024, n_val: 128, n_test: 64, image_size: 16}")
    trainer = Trainer(cfg, progress=False)
    trainer.fit()
    first, last = trainer.history[0], trainer.history[-1]
    assert last["train_objective"] < 0.8 * first["train_objective"]
    assert last["val_acc"]["colour"] > 0.5  # chance is 1/6


@pytest.mark.parametrize("compiled", ["false", "true"])
def test_same_seed_same_numbers_and_other_seed_differs(compiled):
    a = Trainer(tiny_config(f"train.compile={compiled}"), progress=False).fit()
    b = Trainer(tiny_config(f"train.compile={compiled}"), progress=False).fit()
    c = Trainer(tiny_config("seed=1", f"train.compile={compiled}"), progress=False).fit()
    assert a.compiled == (compiled == "true")
    assert a.test == b.test
    assert a.test.loss != c.test.loss


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


def test_mdl_resampling_and_loss_weighting_both_train():
    for mode in ("resample", "loss"):
        cfg = tiny_config("benchmark.view=mdl", f"scalarization.mdl_mode={mode}",
                          "scalarization.weights=[0.7, 0.1, 0.1, 0.1]",
                          "benchmark.options={n_train: [64, 32, 16, 8], n_val: 8, n_test: 8, "
                          "image_size: 16}")
        summary = Trainer(cfg, progress=False).fit()
        assert set(summary.test.acc) == {"flat", "textured", "sketch", "photo"}


def test_onehot_weights_train_only_that_head():
    cfg = tiny_config("scalarization.weights=onehot:shape", "train.weight_decay=0")
    trainer = Trainer(cfg, progress=False)
    before = {k: v.clone() for k, v in trainer.model.heads.state_dict().items()}
    trainer.fit()
    after = trainer.model.heads.state_dict()
    assert not torch.equal(before["shape.weight"], after["shape.weight"])
    assert torch.equal(before["colour.weight"], after["colour.weight"])


def test_callbacks_see_losses_before_backward():
    seen = []

    class Probe(Callback):
        def on_losses(self, trainer, losses, per_example, ctx):
            grads = torch.autograd.grad(losses[0], ctx.features, retain_graph=True)
            seen.append(grads[0].shape)

    Trainer(tiny_config("train.epochs=1"), callbacks=[Probe()], progress=False).fit()
    assert len(seen) == 3 and seen[0][1] == 16


def test_divergence_is_a_clear_error():
    cfg = tiny_config("train.lr=1e30", "train.epochs=2", "train.warmup_epochs=0")
    with pytest.raises(TrainingDiverged, match="diverged"):
        Trainer(cfg, progress=False).fit()


def test_bf16_autocast_runs_on_cpu():
    summary = Trainer(tiny_config("train.precision=bf16", "train.epochs=1"),
                      progress=False).fit()
    assert 0.0 <= summary.test.avg_acc <= 1.0


def test_unknown_method_lists_valid_names():
    with pytest.raises(ScalarizeError, match=r"unknown method .pcgradx.; choose one of: .*pcgrad"):
        Trainer(tiny_config("method.name=pcgradx"), progress=False)


def test_loading_a_state_keeps_the_weights_bit_for_bit():
    """Weights whose sum is not exactly 1 in floating point would move by an ulp if they were
    normalised again on load, and the resumed run would drift from an uninterrupted one."""
    names = ("shape", "colour", "size")
    cfg = tiny_config("benchmark.tasks=[shape, colour, size]",
                      "scalarization.weights=[0.342, 0.419, 0.24]")
    trainer = Trainer(cfg, progress=False)
    weights = trainer.weights.values
    assert sum(weights) != 1.0  # the case that used to drift
    state = trainer.state_dict()
    fresh = Trainer(cfg.derive(weights="uniform"), progress=False)
    fresh.load_state_dict(state)
    assert fresh.weights.names == names and fresh.weights.values == weights
