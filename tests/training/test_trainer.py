
import pytest
import torch

from scalarize.errors import ScalarizeError
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


def test_names_that_moved_to_the_launch_layer_say_where():
    with pytest.raises(ImportError, match=r"moved to scalarize\.launch\.train_run"):
        from scalarize.training import train_run  # noqa: F401
    with pytest.raises(AttributeError):
        import scalarize.training

        scalarize.training.no_such_name  # noqa: B018
