import pytest

from scalarize.analysis.compare import compare_table, load_compare
from scalarize.errors import ScalarizeError
from scalarize.report import build_report
from scalarize.studies.compare import load_compare_config, plan_compare, run_compare
from tests.conftest import tiny_compare

COMPARE = tiny_compare(
    ["static", {"name": "static", "weights": [0.8, 0.2], "label": "tilted"}, "pcgrad", "uw"],
    [0, 1])


@pytest.fixture()
def compare_file(tmp_path):
    path = tmp_path / "compare.yaml"
    path.write_text(COMPARE)
    return path


def test_plan_and_table(compare_file, tmp_path):
    config = load_compare_config(compare_file)
    plan = plan_compare(config, ("colour", "count"))
    assert len(plan) == 2 * (4 + 2)
    tilted = next(c for p, c in plan if p.label == "tilted")
    assert tilted.scalarization.weights == [0.8, 0.2]
    run_compare(config, tmp_path / "out", progress=False)
    table = compare_table(load_compare(tmp_path / "out"))
    assert list(table.method) == ["static", "tilted", "pcgrad", "uw", "single-task"]
    assert (table.seeds == 2).all()
    assert table.avg_acc.between(0, 1).all() and table.gain_pct.iloc[:4].notna().all()
    assert (table.step_ms.iloc[:4] > 0).all()
    html = build_report(tmp_path / "out")[0].read_text()
    assert "Method comparison" in html


def test_unknown_method_fails_before_training(compare_file, tmp_path):
    config = load_compare_config(compare_file, ["compare.methods=[static, pcgrad2]"])
    with pytest.raises(ScalarizeError, match="unknown method 'pcgrad2'"):
        run_compare(config, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_dense_tasks_compare_by_their_primary_metrics(tmp_path):
    import json

    from scalarize.analysis.gain import multitask_gain
    from scalarize.benchmarks.fixtures import write_taskonomy

    options = write_taskonomy(tmp_path / "taskonomy", views=2)
    path = tmp_path / "dense.yaml"
    path.write_text(f"""
benchmark:
  name: taskonomy
  tasks: [depth_zbuffer, segment_semantic]
  options: {json.dumps(options)}
model: {{spec: resnet8-x0.25}}
train: {{epochs: 2, batch_size: 4, device: cpu}}
compare:
  methods: [static]
  seeds: [0]
""")
    run_compare(load_compare_config(path), tmp_path / "out", progress=False)
    runs = load_compare(tmp_path / "out")
    assert runs.attrs["lower_is_better"] == {"depth_zbuffer": True, "segment_semantic": False}
    table = compare_table(runs).set_index("method")
    static = runs[runs.single_task.isna()].iloc[0]
    assert table.loc["static", "depth_zbuffer ↓"] == static["m_depth_zbuffer"]  # the L1 error
    assert "segment_semantic" in table and "depth_zbuffer" not in table  # marked, not bare
    assert table.attrs["legend"].startswith("↓: lower is better")
    singles = runs[runs.single_task.notna()].set_index("single_task")
    base = {o: singles.loc[o, f"m_{o}"] for o in ("depth_zbuffer", "segment_semantic")}
    multi = {o: static[f"m_{o}"] for o in base}
    expected = multitask_gain(multi, base, {"depth_zbuffer": True})
    assert table.loc["static", "gain_pct"] == pytest.approx(expected)
    assert table.loc["static", "avg_acc"] == pytest.approx(
        (static.s_depth_zbuffer + static.s_segment_semantic) / 2)


def test_weights_for_a_method_that_ignores_them_are_refused(compare_file, tmp_path):
    config = load_compare_config(compare_file, [
        "compare.methods=[static, {name: pcgrad, weights: [0.8, 0.2], label: tilted-pcgrad}]"])
    with pytest.raises(ScalarizeError, match=r"compare entry 'tilted-pcgrad' sets the "
                       r"scalarization weights, but pcgrad ignores them .*remove the weights"):
        run_compare(config, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_weights_for_any_method_set_the_batch_mix_with_mdl_resampling(compare_file):
    config = load_compare_config(compare_file, [
        "benchmark.view=mdl", "benchmark.tasks=null",
        "compare.methods=[{name: pcgrad, weights: [0.4, 0.2, 0.2, 0.2]}]"])
    runs = [c for p, c in plan_compare(config, ("a", "b", "c", "d")) if p.method == "pcgrad"]
    assert [c.scalarization.weights for c in runs] == [[0.4, 0.2, 0.2, 0.2]] * 2  # two seeds
    with pytest.raises(ScalarizeError, match="pcgrad ignores them"):
        plan_compare(load_compare_config(compare_file, [
            "benchmark.view=mdl", "benchmark.tasks=null", "scalarization.mdl_mode=loss",
            "compare.methods=[{name: pcgrad, weights: [0.4, 0.2, 0.2, 0.2]}]"]),
            ("a", "b", "c", "d"))


def test_architectures_side_by_side_with_methods(tmp_path):
    """``compare.models`` × ``compare.methods``: one row per model and method, the model named;
    the single-task baselines train the base model."""
    import yaml

    study = yaml.safe_load(tiny_compare(["static", "pcgrad"], [0]))
    study["compare"]["models"] = ["mtan-resnet8-x0.125",
                                  {"spec": "mmoe-e2-w8", "label": "moe"}]
    path = tmp_path / "archs.yaml"
    path.write_text(yaml.safe_dump(study))
    config = load_compare_config(path)
    plan = plan_compare(config, ("colour", "count"))
    multi = [(p, c) for p, c in plan if p.single_task is None]
    assert {(p.model, p.method, c.model.spec) for p, c in multi} == {
        ("mtan-resnet8-x0.125", "static", "mtan-resnet8-x0.125"),
        ("mtan-resnet8-x0.125", "pcgrad", "mtan-resnet8-x0.125"),
        ("moe", "static", "mmoe-e2-w8"), ("moe", "pcgrad", "mmoe-e2-w8")}
    assert all(c.model.spec == "vit-d1-w8-p8" for p, c in plan if p.single_task)
    assert "moe-pcgrad-s0" in {p.name for p, _ in plan}
    run_compare(config, tmp_path / "out", progress=False)
    table = compare_table(load_compare(tmp_path / "out"))
    assert list(zip(table.model, table.method, strict=True))[:4] == [
        ("mtan-resnet8-x0.125", "static"), ("mtan-resnet8-x0.125", "pcgrad"),
        ("moe", "static"), ("moe", "pcgrad")]
    assert table.method.iloc[-1] == "single-task" and table.gain_pct.iloc[:4].notna().all()
    html = build_report(tmp_path / "out")[0].read_text()
    assert "mtan-resnet8-x0.125" in html


def test_models_sharing_a_label_are_refused(compare_file):
    config = load_compare_config(compare_file, ["compare.models=[resnet8, resnet8]"])
    with pytest.raises(ScalarizeError, match="compare models share labels"):
        plan_compare(config, ("colour", "count"))
