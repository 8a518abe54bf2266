"""train.compile: the decision, one compile per architecture and mode across runs, agreement
with eager training for every method, and a resume in the other mode refused."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch._dynamo.utils import counters

from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.methods import METHODS, base, build_method
from scalarize.methods.static import StaticScalarization
from scalarize.runs.store import RunDir
from scalarize.studies.sweep import SweepConfig, run_sweep
from scalarize.training import Trainer, compiling
from scalarize.training.compiling import CompiledEncoder, compile_cache_dir, decide_compile
from tests.conftest import tiny_config


def test_auto_compiles_on_cuda_only_and_the_switch_reads_yaml_booleans(monkeypatch):
    monkeypatch.setattr(compiling, "_can_compile_cuda", lambda: True)
    assert decide_compile("auto", "cuda", method_compiles=True).enabled
    monkeypatch.setattr(compiling, "_can_compile_cuda", lambda: False)  # no Triton, say
    assert not decide_compile("auto", "cuda", method_compiles=True).enabled
    assert not decide_compile("auto", "cpu", method_compiles=True).enabled
    assert decide_compile("true", "cpu", method_compiles=True).enabled
    assert not decide_compile("false", "cuda", method_compiles=True).enabled
    assert tiny_config("train.compile=true").train.compile == "true"
    assert tiny_config("train.compile=false").train.compile == "false"
    with pytest.raises(ScalarizeError, match="'auto', 'true' or 'false'"):
        tiny_config("train.compile=sometimes")


def test_a_method_that_cannot_compile_trains_eagerly_with_one_warning(monkeypatch):
    monkeypatch.setattr(StaticScalarization, "compiles", False)
    with pytest.warns(UserWarning, match="train.compile: static .* trains eagerly"):
        trainer = Trainer(tiny_config("train.compile=true"), progress=False)
    assert not trainer.compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto asked for nothing in particular: nothing to say
        assert not Trainer(tiny_config(), progress=False).compiled
    assert not base.Method.compiles  # a method of the user's compiles only if it says so


def test_other_shapes_and_modes_run_eagerly():
    net = torch.nn.Linear(3, 2)
    encoder = CompiledEncoder(net, batch_size=4)
    torch._dynamo.reset()
    counters.clear()
    net.eval()
    encoder(torch.zeros(4, 3))  # evaluation mode
    net.train()
    encoder(torch.zeros(3, 3))  # a smaller last batch
    with torch.no_grad():
        encoder(torch.zeros(4, 3))  # a method's no-grad recomputation
    assert counters["stats"]["unique_graphs"] == 0
    encoder(torch.zeros(4, 3)).sum().backward()
    assert counters["stats"]["unique_graphs"] == 1


def test_a_sweep_compiles_each_architecture_once(tmp_path):
    # 3 seeds of one capacity: 3 fresh models, an uneven last batch (80 = 2 × 32 + 16),
    # evaluation every epoch; Dynamo compiles one graph for all of it
    config = SweepConfig.model_validate({
        **tiny_config("train.compile=true", "model.spec=resnet8-x0.125",
                      "benchmark.options={n_train: 80, n_val: 20, n_test: 20, "
                      "image_size: 16}").model_dump(),
        "sweep": {"capacities": ["resnet8-x0.125"], "single_task": False,
                  "weights": {"points": [[0.2, 0.2, 0.2, 0.2, 0.2]]}, "seeds": [0, 1, 2]}})
    torch._dynamo.reset()
    counters.clear()
    planned = run_sweep(config, tmp_path / "sweep", progress=False)
    assert len(planned) == 3
    assert counters["stats"]["unique_graphs"] == 1
    assert all(s.compiled for s in _summaries(tmp_path / "sweep"))


def test_compiled_graphs_are_cached_in_the_project_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALARIZE_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert compile_cache_dir() == str(tmp_path / "torch-compile")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")  # the user's choice wins
    assert compile_cache_dir() == "/elsewhere"


def _summaries(folder):
    return [RunDir(p).read_summary() for p in sorted(folder.iterdir()) if p.is_dir()]


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_trains_compiled_as_it_does_eagerly(name):
    params = []
    compiles = build_method(name, {}, 5).compiles
    for compiled in ("false", "true"):
        cfg = tiny_config(f"train.compile={compiled}", f"method.name={name}", "train.epochs=1",
                          "model.spec=resnet8-x0.125")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = Trainer(cfg, progress=False)
        assert trainer.compiled == (compiled == "true" and compiles)
        said = [w for w in caught if "train.compile" in str(w.message)]
        assert len(said) == (compiled == "true" and not compiles)
        calls = _count_compiled_calls(trainer)
        trainer.train_epoch()
        assert calls["n"] == (3 if trainer.compiled else 0)  # every step of 3 went through it
        params.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    # compiled and eager kernels round differently: 3 steps keep it at float32 noise
    assert torch.allclose(params[0], params[1], atol=1e-5, rtol=0)


def _count_compiled_calls(trainer):
    calls = {"n": 0}
    if trainer.compiled:
        inner = trainer._compiled._compiled

        def counted(x):
            calls["n"] += 1
            return inner(x)

        trainer._compiled._compiled = counted
    return calls


def test_the_conflict_probe_measures_on_eager_steps_of_a_compiled_run(tmp_path):
    records = []
    for compiled in ("false", "true"):
        cfg = tiny_config(f"train.compile={compiled}", "model.spec=resnet8-x0.125",
                          "probes.conflicts={every: 2}")
        summary = train_run(cfg, tmp_path / compiled, progress=False)
        assert summary.compiled == (compiled == "true")
        records.append(RunDir(tmp_path / compiled / summary.run).read_conflicts())
    assert len(records[0]) == len(records[1]) == 3  # steps 0, 2, 4 of 6
    for eager, compiled in zip(*records, strict=True):
        assert compiled.step == eager.step
        assert compiled.cos_mean == pytest.approx(eager.cos_mean, abs=1e-4)


def test_auto_resumes_in_the_mode_the_run_started_in_and_explicit_modes_are_kept():
    compiled = Trainer(tiny_config("train.compile=true"), progress=False)
    eager = Trainer(tiny_config("train.compile=false"), progress=False)
    with pytest.raises(ScalarizeError, match="started compiled and would resume eager"):
        eager.load_state_dict(compiled.state_dict())
    with pytest.raises(ScalarizeError, match="started eager and would resume compiled"):
        compiled.load_state_dict(eager.state_dict())
    auto = Trainer(tiny_config(), progress=False)  # auto: eager on CPU
    assert not auto.compiled
    auto.load_state_dict(compiled.state_dict())  # e.g. a run started on a GPU
    assert auto.compiled
    old = eager.state_dict()
    del old["compiled"]  # a checkpoint from before train.compile: eager
    auto.load_state_dict(old)
    assert not auto.compiled
