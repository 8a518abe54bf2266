import copy

import pandas as pd
import pytest

from scalarize import demo


def test_demo_pipeline_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch, capsys):
    tiny = copy.deepcopy(demo.DEMO)
    tiny["benchmark"]["options"].update({"n_train": [48, 16], "n_val": 16, "n_test": 32,
                                         "image_size": 16})
    tiny["train"]["epochs"] = 2
    tiny["probes"]["conflicts"]["every"] = 1
    monkeypatch.setattr(demo, "DEMO", tiny)
    runs = demo.main(tmp_path / "demo", progress=False)
    assert len(runs) == 3 * (2 + 2)  # capacities × (weightings + single-domain baselines)
    out = capsys.readouterr().out
    assert "single-domain" in out and "chance" in out and "Gradient conflicts" in out
    assert "Population-based search" in out and "scalarize replay" in out
    assert "What the numbers say" in out and "PBT at resnet8-x0.25" in out
    assert (tmp_path / "demo" / "pbt" / "summary.json").is_file()
    assert list((tmp_path / "demo" / "pbt").glob("replay-m*/summary.json"))
    html = (tmp_path / "demo" / "report" / "report.html").read_text()
    assert "Population search of the weights" in html


def _table(best_acc, single_acc, uniform_acc, best=("w0.75-0.25", "w0.75-0.25"), noise=0.03):
    return pd.DataFrame({"capacity": ["small", "large"], "params": [1, 9], "best": list(best),
                         "best_acc": best_acc, "best_gain": [0.0, 0.0],
                         "uniform_acc": uniform_acc, "single_acc": single_acc,
                         "noise": [noise, noise]})


def test_the_reading_claims_sharing_pays_only_beyond_the_noise():
    pays = demo.reading(_table([0.50, 0.70], [0.56, 0.62], [0.45, 0.69]),
                        single="single-domain")
    assert "loses to them by 6.0 points" in pays[1] and "beats them by 8.0 points" in pays[1]
    assert "sharing pays only with enough capacity" in pays[1]
    assert "multi-domain model" in pays[1]
    ties = demo.reading(_table([0.50, 0.63], [0.51, 0.62], [0.50, 0.62]))
    assert "ties them (difference +1.0 points, within the test noise of ±3.0)" in ties[1]
    assert "does not pay beyond noise" in ties[1] and "pays only" not in ties[1]
    assert "ties uniform" in ties[2] and "beats uniform" not in ties[2]


def test_the_reading_says_pbt_ties_uniform_within_noise():
    table = _table([0.5, 0.7], [0.5, 0.6], [0.5, 0.6], best=("uniform", "uniform"))
    lines = demo.reading(table, pbt=("large", 0.61, 0.60))
    assert lines[2] == "- Best weights against uniform: at small, large the best is uniform."
    assert lines[-1].startswith("- PBT at large: its replayed schedule ≈ uniform at this size")
    assert "beats" in demo.reading(table, pbt=("large", 0.65, 0.60))[-1]


def test_noise_shrinks_with_the_test_set():
    small = demo.noise({"a": 0.5, "b": 0.5}, {"a": 100, "b": 100})
    large = demo.noise({"a": 0.5, "b": 0.5}, {"a": 10000, "b": 10000})
    assert small == pytest.approx(10 * large)
