"""Dataset size as a sweep axis (``sweep.data``): planning, resume, the (data × capacity)
analysis and its errors."""

import json
import re

import numpy as np
import pytest

from scalarize.analysis import gain_plane, load_sweep, per_capacity, summarize, weighting_gains
from scalarize.analysis.capacity import rank_stability, transfer_regret
from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.report import build_report
from scalarize.runs import RunDir
from scalarize.studies.sweep import load_sweep_config, plan_sweep, run_sweep
from tests.conftest import tiny_study

SWEEP = tiny_study(sweep={"capacities": {"template": "vit-d1-w{width}-p8",
                                         "axes": {"width": [8, 16]}},
                          "data": {"options": {"n_train": [32, 96]}},
                          "weights": {"points": [[0.25, 0.75]]}, "seeds": [0]})


@pytest.fixture()
def sweep_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


def test_plan_crosses_data_options_with_capacities_weights_and_seeds(sweep_file):
    config = load_sweep_config(sweep_file, ["sweep.seeds=[0, 1]"])
    plan = plan_sweep(config, ("colour", "count"))
    # 2 data sizes x 2 capacities x (uniform, [.25, .75], 2 single-task) x 2 seeds
    assert len(plan) == 2 * 2 * 4 * 2
    assert len({p.name for p, _ in plan}) == len(plan)  # one folder per run
    sizes = {p.data: c.benchmark.options["n_train"] for p, c in plan}
    assert sizes == {"data-n_train32": 32, "data-n_train96": 96}
    for planned, run_config in plan:
        assert planned.data_axes == {"n_train": run_config.benchmark.options["n_train"]}
        assert run_config.benchmark.options["image_size"] == 16  # merged over the base options
        assert run_config.name == planned.name and planned.name.endswith(planned.data)


def test_a_sweep_without_data_options_plans_and_records_as_before(sweep_file):
    config = load_sweep_config(sweep_file, ["sweep.data=null"])
    plan = plan_sweep(config, ("colour", "count"))
    assert all(p.data is None and c.name is None for p, c in plan)
    assert "data" not in plan[0][0].dump() and "data_axes" not in plan[0][0].dump()


def test_a_value_listed_twice_is_refused_in_one_line(sweep_file):
    with pytest.raises(ScalarizeError, match="n_train lists a value more than once"):
        load_sweep_config(sweep_file, ["sweep.data={options: {n_train: [32, 32]}}"])


def test_runs_resume_and_the_analysis_gives_the_data_by_capacity_plane(sweep_file, tmp_path,
                                                                       capsys):
    config = load_sweep_config(sweep_file)
    out = tmp_path / "out"
    plan = run_sweep(config, out, progress=False)
    assert len(plan) == 2 * 2 * 4
    manifest = json.loads((out / "sweep.json").read_text())
    assert {r["data"] for r in manifest["runs"]} == {"data-n_train32", "data-n_train96"}
    # each run trained on its own training-set size
    for planned in plan:
        run_config = (out / planned.name / "config.yaml").read_text()
        assert f"n_train: {planned.data_axes['n_train']}" in run_config
    # resume: an unfinished run is the only one trained again
    first = {p.name: (out / p.name / "summary.json").stat().st_mtime_ns for p in plan}
    victim = plan[5].name
    (out / victim / "summary.json").unlink()
    run_sweep(config, out, progress=False)
    for p in plan:
        changed = (out / p.name / "summary.json").stat().st_mtime_ns != first[p.name]
        assert changed == (p.name == victim)
    assert RunDir(out / victim).is_complete

    runs = load_sweep(out)
    assert set(runs.data) == {"data-n_train32", "data-n_train96"}
    gains = weighting_gains(runs)
    # each Δ is against the single-task runs of its own data size and capacity
    for _, row in gains.iterrows():
        cell = runs[(runs.data == row.data) & (runs.capacity == row.capacity)]
        single = {o: cell[cell.single_task == o][f"m_{o}"].iloc[0] for o in ("colour", "count")}
        expected = np.mean([(row[f"m_{o}"] - single[o]) / single[o] * 100 for o in single])
        assert row.gain == pytest.approx(expected)
    cells = per_capacity(summarize(gains))
    assert len(cells) == 4 and set(cells.columns) >= {"data", "capacity", "data_n_train"}
    plane = gain_plane(cells, "uniform_gain")
    assert plane.columns.tolist() == ["data", "vit-d1-w8-p8", "vit-d1-w16-p8"]
    assert plane.data.tolist() == ["data-n_train32", "data-n_train96"]
    small = cells[(cells.data == "data-n_train32") & (cells.capacity == "vit-d1-w8-p8")]
    assert plane.iloc[0, 1] == f"{small.uniform_gain.iloc[0]:.1f}"  # one seed: no interval
    # rank stability and transfer regret are per data size
    assert set(rank_stability(summarize(gains)).data) == {"data-n_train32", "data-n_train96"}
    assert set(transfer_regret(summarize(gains)).data) <= {"data-n_train32", "data-n_train96"}

    assert main(["analyze", "capacity", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "uniform Δ% (data × capacity)" in printed and "data-n_train96" in printed

    # the report: the (data × capacity) heatmap and the tables with the data setting
    html_path, _ = build_report(out)
    html = html_path.read_text()
    assert "Multi-task gain over data setting and capacity" in html
    assert (html_path.parent / "figures" / "gain_data_capacity.png").is_file() or list(
        html_path.parent.rglob("gain_data_capacity.png"))
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert "data-n_train32" in cells and not [c for c in cells if "nan" in c.lower()]
