import copy

from scalarize import demo


def test_demo_pipeline_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch, capsys):
    tiny = copy.deepcopy(demo.DEMO)
    tiny["benchmark"]["options"] = {"n_train": 64, "n_val": 16, "n_test": 32, "image_size": 16}
    tiny["train"]["epochs"] = 2
    tiny["probes"]["conflicts"]["every"] = 1
    monkeypatch.setattr(demo, "DEMO", tiny)
    runs = demo.main(tmp_path / "demo", progress=False)
    assert len(runs) == 2 * (3 + 4)  # capacities × (weightings + single-task baselines)
    out = capsys.readouterr().out
    assert "single-task" in out and "chance" in out and "Gradient conflicts" in out
    assert "Population-based search" in out and "scalarize replay" in out
    assert (tmp_path / "demo" / "pbt" / "summary.json").is_file()
    assert list((tmp_path / "demo" / "pbt").glob("replay-m*/summary.json"))
    html = (tmp_path / "demo" / "report" / "report.html").read_text()
    assert "Population search of the weights" in html
