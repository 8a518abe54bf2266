"""check_run resolves a config once into the plan the trainer takes: a run builds each part once."""

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.launch import check_run, check_study, run_name, train_run
from scalarize.methods import METHODS, build_method
from scalarize.methods.static import StaticScalarization
from scalarize.models import build_model
from scalarize.probes.conflicts import ConflictProbe
from scalarize.training import Trainer, WeightSchedule, load_data
from tests.conftest import tiny_config


def test_the_trainer_takes_the_plan_as_it_is():
    cfg = tiny_config("scalarization.weights=onehot:shape",
                      "scalarization.schedule=[[0, [1, 0, 0, 0, 0]], [1, [0, 1, 0, 0, 0]]]",
                      "probes={conflicts: {every: 5}}")
    plan = check_run(cfg, load_data(cfg))
    assert plan.weights.label() == "onehot-shape"
    assert [type(c) for c in plan.callbacks] == [WeightSchedule, ConflictProbe]
    extra = WeightSchedule([(0, [1, 1, 1, 1, 1])])
    trainer = Trainer(plan, callbacks=[extra], progress=False)
    assert trainer.config is cfg and trainer.data is plan.data
    assert trainer.objectives is plan.objectives and trainer.weights is plan.weights
    assert trainer.method is plan.method
    assert trainer.callbacks == [*plan.callbacks, extra]  # the plan's first, as always


def test_a_run_parses_its_weights_and_builds_its_parts_once(tmp_path, monkeypatch):
    import scalarize.launch.check as check
    import scalarize.launch.process as process
    import scalarize.training.plan as plan

    calls: list[str] = []

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in [(plan, "parse_weights"), (check, "parse_weights"),
                         (process, "parse_weights"), (plan, "build_objectives"),
                         (check, "build_objectives"), (plan, "build_method"),
                         (check, "build_probes"), (process, "build_probes"),
                         (check, "check_model")]:
        counted(module, name)
    cfg = tiny_config("train.epochs=1", "probes={conflicts: {every: 5}}")
    summary = train_run(cfg, tmp_path, progress=False)
    assert sorted(calls) == ["build_method", "build_objectives", "build_probes", "check_model",
                             "parse_weights"]
    assert summary.run == run_name(cfg, summary.weights)


def test_building_a_method_draws_nothing_from_the_random_generator():
    """The plan builds every built-in method before the trainer seeds the generator and
    builds the model: that leaves every run's numbers as they were only because none draws."""
    for name in METHODS:
        torch.manual_seed(0)
        before = torch.get_rng_state()
        build_method(name, {}, 3)
        assert torch.equal(torch.get_rng_state(), before), name


def test_a_schedule_is_checked_once_in_the_plan():
    cfg = tiny_config("train.epochs=2", "scalarization.schedule=[[0, [1, 0, 0, 0, 0]], "
                      "[3, [0, 1, 0, 0, 0]]]")
    with pytest.raises(ScalarizeError, match="entry at epoch 3"):
        check_run(cfg, load_data(cfg))
    with pytest.raises(ScalarizeError, match="entry at epoch 3"):
        check_study([tiny_config(), cfg])


class DrawingMethod(StaticScalarization):
    """A user's method with random parameters: building it draws from the generator."""

    def __init__(self, n_objectives: int | None = None) -> None:
        super().__init__(n_objectives)
        self.noise = torch.nn.Parameter(torch.randn(n_objectives or 1))


def test_a_method_that_draws_is_built_by_the_trainer_after_the_model():
    cfg = tiny_config("method.name=tests.launch.test_check:DrawingMethod")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    plan = check_run(cfg, load_data(cfg))
    assert plan.method is None and torch.equal(torch.get_rng_state(), before)
    trainer = Trainer(plan, progress=False)
    torch.manual_seed(cfg.seed)  # a run's draws: the model, then the method, as always
    build_model(cfg.model.spec, plan.data.image_shape, plan.objectives.head_specs(),
                cfg.model.options)
    assert isinstance(trainer.method, DrawingMethod)
    assert torch.equal(trainer.method.noise, torch.randn(len(plan.objectives.names)))


def test_a_finished_run_resumes_without_checking_this_machine_again(tmp_path, monkeypatch):
    import scalarize.launch.check as check

    cfg = tiny_config("train.epochs=1")
    summary = train_run(cfg, tmp_path, progress=False)

    def too_big(*args, **kwargs):
        raise ScalarizeError("model too big for this machine")

    monkeypatch.setattr(check, "check_model", too_big)
    assert train_run(cfg, tmp_path, resume=True, progress=False) == summary
    with pytest.raises(ScalarizeError, match="too big"):
        train_run(cfg, tmp_path / "other", progress=False)


def test_a_config_with_two_mistakes_is_told_the_model_before_the_method():
    cfg = tiny_config("model.spec=vit-d1-w16-p32", "method.name=no_such_method")
    with pytest.raises(ScalarizeError, match="patch 32"):
        check_run(cfg, load_data(cfg))


def test_a_run_of_several_processes_is_refused_what_its_processes_would_refuse():
    cfg = tiny_config("train.nproc=2", "method.name=mgda_ub")
    with pytest.raises(ScalarizeError, match="method 'mgda_ub' cannot train on 2 processes"):
        check_run(cfg, load_data(cfg))
    cfg = tiny_config("train.nproc=3")
    with pytest.raises(ScalarizeError, match="does not divide among 3 processes"):
        check_run(cfg, load_data(cfg))
    check_run(tiny_config("train.nproc=2"), load_data(cfg))
