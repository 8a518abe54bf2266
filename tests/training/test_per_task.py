"""Training a model with task-specific paths: a user's own two-tower model (an import target)
through the command line, with a gradient-based method and the conflict probe; a method that
needs one shared feature tensor refused before anything is written; compiled and eager agree;
dense tasks on per-task feature maps; the probe on its own batch; a PBT search."""

from __future__ import annotations

import json

import pytest
import torch

from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.training import Trainer
from tests.conftest import tiny_config

TINY = ["train.epochs=1", "train.batch_size=32", "train.device=cpu", "--quiet",
        "benchmark.options={n_train: 64, n_val: 16, n_test: 16, image_size: 16}"]


def _config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("benchmark: {name: shapes, tasks: [colour, count]}\n")
    return str(path)


def test_a_users_two_tower_model_trains_through_the_command_line(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["train", _config(tmp_path), "--out", str(out),
            "model.spec=tests.models.two_tower:build", "model.options={width: 6}",
            "method.name=upgrad", "probes={conflicts: {every: 1}}", *TINY]
    assert main(argv) == 0
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["test"]["avg_acc"] <= 1.0
    records = [json.loads(line) for line in (run / "conflicts.jsonl").read_text().splitlines()]
    # the probe measured the shared stem only: its groups are the stem's
    assert records and set(records[0]["layers"]) == {"stem.0"}


def test_a_method_needing_shared_features_is_refused_before_anything_is_written(
        tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["train", _config(tmp_path), "--out", str(out), "model.spec=mmoe-e2-w8",
            "method.name=mgda_ub", *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "method 'mgda_ub' works on one feature tensor that every objective shares" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_the_trainer_moves_the_task_specific_paths_and_the_shared_ones():
    trainer = Trainer(tiny_config("model.spec=mtan-resnet8-x0.125", "method.name=pcgrad"),
                      progress=False)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train_step(torch.arange(32))
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("encoder.attention.") for n in moved)
    assert any(n.startswith("encoder.resnet.") for n in moved)
    assert {id(p) for p in trainer.shared_params}.isdisjoint(
        id(p) for p in trainer.model.encoder.attention.parameters())


@pytest.mark.parametrize("method", ["static", "pcgrad"])
def test_an_mmoe_trains_compiled_as_it_does_eagerly(method):
    """``train.compile=true``: static compiles, pcgrad (no ``compiles``) falls back to eager
    with the warning line; both end where eager training does."""
    params = {}
    for compile_ in ("false", "true"):
        cfg = tiny_config("model.spec=mmoe-e2-w8", f"method.name={method}",
                          f"train.compile={compile_}")
        if compile_ == "true" and method == "pcgrad":
            with pytest.warns(UserWarning, match="trains eagerly"):
                trainer = Trainer(cfg, progress=False)
        else:
            trainer = Trainer(cfg, progress=False)
        assert trainer.compiled == (compile_ == "true" and method == "static")
        for _ in range(2):
            trainer.train_step(torch.arange(32))
        params[compile_] = [p.detach().clone() for p in trainer.model.parameters()]
    for eager, compiled in zip(params["false"], params["true"], strict=True):
        assert torch.allclose(eager, compiled, atol=1e-5)


def test_model_info_describes_a_per_task_family(capsys):
    assert main(["model", "info", "ple-l2-e2-w16", "--image-size", "16"]) == 0
    assert "ple-l2-e2-w16" in capsys.readouterr().out


def test_gradnorm_on_a_per_task_model_in_python_is_one_line():
    with pytest.raises(ScalarizeError, match="method 'gradnorm' works on one feature") as info:
        Trainer(tiny_config("model.spec=mtan-resnet8-x0.125", "method.name=gradnorm"),
                progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec,method", [("mtan-resnet8-x0.25", "upgrad"),
                                         ("cross-stitch-resnet8-x0.125", "static")])
def test_dense_tasks_train_on_per_task_feature_maps(tmp_path, spec, method):
    from scalarize.benchmarks.fixtures import write_taskonomy
    from scalarize.config import load_config
    from scalarize.launch import train_run
    from scalarize.runs import RunDir

    options = write_taskonomy(tmp_path / "taskonomy")
    config = load_config(None, ["benchmark.name=taskonomy",
                                f"benchmark.options={json.dumps(options)}",
                                f"model.spec={spec}", f"method.name={method}",
                                "train.epochs=1", "train.batch_size=4", "train.device=cpu",
                                "probes={conflicts: {every: 1}}"])
    summary = train_run(config, tmp_path / "runs", progress=False)
    assert "mean_angle" in summary.test.metrics["normal"]
    records = RunDir(next((tmp_path / "runs").rglob("conflicts.jsonl")).parent).read_conflicts()
    assert records and len(records[0].cos) == 4


def test_the_probe_on_its_own_batch_measures_a_per_task_model(tmp_path):
    from scalarize.launch import train_run
    from scalarize.runs import RunDir

    config = tiny_config("model.spec=ple-l2-e1-w8", "method.name=static",
                         "probes={conflicts: {every: 1, examples: 8}}")
    train_run(config, tmp_path, progress=False)
    records = RunDir(next(tmp_path.rglob("conflicts.jsonl")).parent).read_conflicts()
    assert records and all(r.control_cos is not None for r in records)


def test_a_pbt_search_on_an_mtan(tmp_path):
    from scalarize.search.spec import load_search_config
    from scalarize.studies.runner import run_search
    from tests.search.conftest import SEARCH

    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    config = load_search_config(path, ["model.spec=mtan-resnet8-x0.125", "train.epochs=2",
                                       "search.population=2"])
    run_search(config, tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["members"]) == 2


def test_the_probe_groups_the_shared_blocks_of_a_per_task_model():
    from scalarize.probes.conflicts import ConflictProbe

    probe = ConflictProbe(every=1)
    trainer = Trainer(tiny_config("model.spec=mtan-resnet8-x0.125"), callbacks=[probe],
                      progress=False)
    probe.on_fit_start(trainer)
    assert {"resnet.stages.0", "resnet.stages.2", "carry.0"} <= set(probe.groups)
    assert not any(name.startswith("attention") for name in probe.groups)  # task-specific
