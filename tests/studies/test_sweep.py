import json
import math

import pytest

from scalarize.errors import ScalarizeError
from scalarize.runs import RunDir
from scalarize.studies.sweep import dirichlet_points, load_sweep_config, plan_sweep, run_sweep
from tests.conftest import tiny_study

SWEEP = tiny_study()


@pytest.fixture()
def sweep_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


def test_plan_is_capacities_by_weights_by_seeds_without_duplicates(sweep_file):
    config = load_sweep_config(sweep_file)
    plan = plan_sweep(config, ("colour", "count"))
    # grid {0, .5, 1} ∪ {uniform} ∪ {onehot x2} = 3 distinct weightings
    assert len(plan) == 2 * 3 * 2
    roles = {(p.capacity, p.weights_label, p.seed) for p, _ in plan}
    assert ("vit-d1-w8-p8", "onehot-count", 1) in roles
    assert {p.single_task for p, _ in plan} == {None, "colour", "count"}
    assert plan[0][0].axes == {"depth": 1, "width": 8}


def test_vary_data_draws_each_seeds_data_at_that_seed(sweep_file):
    fixed = plan_sweep(load_sweep_config(sweep_file, ["benchmark.seed=7"]), ("colour", "count"))
    assert {c.benchmark.seed for _, c in fixed} == {7}
    varied = plan_sweep(load_sweep_config(sweep_file, ["benchmark.seed=7", "sweep.vary_data=true"]),
                        ("colour", "count"))
    assert all(c.benchmark.seed == p.seed for p, c in varied)
    assert {c.benchmark.seed for _, c in varied} == {0, 1}


def test_resume_skips_finished_runs(sweep_file, tmp_path):
    config = load_sweep_config(sweep_file, ["sweep.seeds=[0]"])
    out = tmp_path / "out"
    plan = run_sweep(config, out, progress=False)
    first = {p.name: (out / p.name / "summary.json").stat().st_mtime_ns for p in plan}
    # an unfinished run: remove one summary; the re-run must finish only that one
    victim = plan[1].name
    (out / victim / "summary.json").unlink()
    run_sweep(config, out, progress=False)
    for p in plan:
        mtime = (out / p.name / "summary.json").stat().st_mtime_ns
        assert (mtime != first[p.name]) == (p.name == victim)
    manifest = json.loads((out / "sweep.json").read_text())
    assert len(manifest["runs"]) == len(plan)
    assert RunDir(out / victim).is_complete


def test_a_different_sweep_in_the_same_folder_is_refused(sweep_file, tmp_path):
    config = load_sweep_config(sweep_file, ["sweep.seeds=[0]", "sweep.weights={step: 1.0}"])
    run_sweep(config, tmp_path / "out", progress=False)
    other = load_sweep_config(sweep_file, ["sweep.seeds=[5]"])
    with pytest.raises(ScalarizeError, match="holds a different sweep"):
        run_sweep(other, tmp_path / "out", progress=False)


def test_bad_sweep_configs(tmp_path, sweep_file):
    plain = tmp_path / "plain.yaml"
    plain.write_text("seed: 0\n")
    with pytest.raises(ScalarizeError, match="no 'sweep' section"):
        load_sweep_config(plain)
    with pytest.raises(ScalarizeError, match="one of step, points or random"):
        load_sweep_config(sweep_file, ["sweep.weights={step: 0.5, random: 3}"])


def test_ray_engine_writes_the_same_store(sweep_file, tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra; make test installs it")
    config = load_sweep_config(sweep_file, ["sweep.seeds=[0]", "sweep.weights={step: 1.0}",
                                            "sweep.capacities=[vit-d1-w8-p8]"])
    plan = run_sweep(config, tmp_path / "ray", engine="ray", progress=False)
    local = run_sweep(config, tmp_path / "local", progress=False)
    for p, q in zip(plan, local, strict=True):
        ray_summary = RunDir(tmp_path / "ray" / p.name).read_summary()
        local_summary = RunDir(tmp_path / "local" / q.name).read_summary()
        assert ray_summary is not None and local_summary is not None
        # Ray gives each task one CPU thread: sums reduce in another order, hence approx
        assert ray_summary.test.acc == local_summary.test.acc
        assert ray_summary.test.loss == pytest.approx(local_summary.test.loss,
                                                            rel=1e-4)


def test_a_weights_grid_for_a_method_that_ignores_weights_is_refused(sweep_file, tmp_path):
    config = load_sweep_config(sweep_file, ["method.name=pcgrad", "sweep.weights={step: 0.5}"])
    with pytest.raises(ScalarizeError, match="the sweep's weights grid sets the scalarization "
                       "weights, but pcgrad ignores them"):
        run_sweep(config, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    # a capacity sweep of such a method at one weighting (uniform) is fine
    only_uniform = load_sweep_config(sweep_file, ["method.name=pcgrad", "sweep.weights={}"])
    assert plan_sweep(only_uniform, ("shape", "colour"))


def test_dirichlet_points_are_seeded_and_on_the_simplex():
    a = dirichlet_points(6, 10, alpha=0.5, seed=3)
    assert a == dirichlet_points(6, 10, alpha=0.5, seed=3)
    assert a != dirichlet_points(6, 10, alpha=0.5, seed=4)
    assert all(math.isclose(sum(p), 1.0) and min(p) >= 0 for p in a)


@pytest.mark.processes
def test_a_sweep_of_two_process_runs_equals_its_one_process_twin(tmp_path):
    """``train.nproc: 2``: the local engine's two workers (side by side) each spawn their
    run's two processes (gloo); each run records two processes and ends where its one-process
    twin (one at a time, in this process) does, to float tolerance."""
    import numpy as np
    import yaml

    def sweep(nproc: int):
        path = tmp_path / f"sweep{nproc}.yaml"
        path.write_text(tiny_study(width=[8], seeds=[0], sweep={"weights": {"points": [
            [0.5, 0.5], [0.8, 0.2]]}, "single_task": False}, train={"nproc": nproc, "threads": 1,
                                               "warmup_epochs": 0}))
        out = tmp_path / f"out{nproc}"
        plan = run_sweep(load_sweep_config(path), out, engine_options={"jobs": nproc},
                         progress=False)
        return out, plan

    (one_out, one_plan), (two_out, two_plan) = sweep(1), sweep(2)
    assert [p.name for p in two_plan] == [p.name for p in one_plan] and len(two_plan) == 2
    for planned in two_plan:
        one, two = RunDir(one_out / planned.name), RunDir(two_out / planned.name)
        assert two.read_summary().world_size == 2 and one.read_summary().world_size is None
        assert yaml.safe_load((two.path / "config.yaml").read_text())["train"]["nproc"] == 2
        assert "nproc" not in yaml.safe_load((one.path / "config.yaml").read_text())["train"]
        a, b = (RunDir(r.path).load_checkpoint()["model"] for r in (one, two))
        assert max(float(np.abs((a[k] - b[k]).numpy()).max()) for k in a) < 1e-4
