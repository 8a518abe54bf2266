import pytest

from scalarize.errors import ScalarizeError
from scalarize.report import build_report
from scalarize.studies.sweep import load_sweep_config, run_sweep
from tests.conftest import tiny_study

SWEEP = tiny_study(depth=[1, 2], step=0.25, seeds=[0])


def test_report_of_a_tiny_sweep(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP)
    run_sweep(load_sweep_config(path), tmp_path / "sweep", progress=False)
    html_path, md_path = build_report(tmp_path / "sweep")
    html = html_path.read_text()
    assert "Gain per capacity" in html and "kendall_<wbr>tau" in html
    # self-contained: accuracy per objective, Pareto front, curves, and the capacity study's 3
    assert html.count("data:image/png;base64,") == 6
    assert "http" not in html.replace("http-equiv", "")  # nothing to fetch
    md = md_path.read_text()
    for name in ("accuracy_per_objective", "pareto_weightings", "training_curves",
                 "gain_over_capacity", "gain_vs_weights", "rank_tau"):
        png = tmp_path / "sweep" / "report" / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f"figures/{name}.png" in md


def test_report_of_an_empty_folder(tmp_path):
    with pytest.raises(ScalarizeError, match="nothing to report"):
        build_report(tmp_path)
    with pytest.raises(ScalarizeError, match="missing does not exist; pass the --out folder"):
        build_report(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ScalarizeError, match="file is a file, not a folder"):
        build_report(tmp_path / "file")
