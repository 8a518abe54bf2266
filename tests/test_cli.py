import json
import subprocess
import sys

import numpy as np

from scalarize.cli import main

TINY = ["model.spec=vit-d1-w16-p8", "train.epochs=1", "train.batch_size=32", "train.device=cpu",
        "benchmark.options={n_train: 64, n_val: 16, n_test: 16, image_size: 16}"]


def _config(tmp_path, text="seed: 0\n"):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_train_then_runs_table(tmp_path, capsys):
    out = str(tmp_path / "runs")
    assert main(["train", _config(tmp_path), "--out", out, "--quiet", *TINY]) == 0
    assert "test avg_acc=" in capsys.readouterr().out
    assert main(["runs", out]) == 0
    table = capsys.readouterr().out
    assert "uniform" in table and "complete" in table
    assert main(["runs", out, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"] == "complete"


def test_existing_run_folder_is_an_error_and_is_kept(tmp_path, capsys):
    out = str(tmp_path / "runs")
    args = ["train", _config(tmp_path), *TINY, "--out", out, "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    metrics = next((tmp_path / "runs").glob("*/metrics.jsonl"))
    before = metrics.read_text()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err
    assert metrics.read_text() == before
    assert main([*args, "--resume"]) == 0  # already complete: nothing retrained
    assert metrics.read_text() == before


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    cfg = _config(tmp_path)
    cases = [
        ["train", cfg, "benchmark.name=nope"],
        ["train", cfg, "model.spec=transformer"],
        ["train", cfg, "benchmark.tasks=[smell]"],
        ["train", cfg, "scalarization.weights=[1, 2]"],
        ["train", cfg, "scalarization.weights=[1, -1, 1, 1, 1]"],
        ["train", cfg, "scalarization.weights=[0, 0, 0, 0, 0]"],
        ["train", str(tmp_path / "missing.yaml")],
        ["train", cfg, "benchmark.name=npz", "benchmark.options={path: /nonexistent.npz}"],
        ["train", cfg, "benchmark.options={n_trian: 5}"],
        ["train", cfg, "--resume", "--overwrite"],
        ["runs", str(tmp_path / "nothing")],
        ["data", "info", "shapes", "n_val=-1"],
    ]
    for argv in cases:
        assert main([*argv[:2], *argv[2:]]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("scalarize: error: ") and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err


def test_corrupt_npz_via_the_command(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = subprocess.run(
        [sys.executable, "-m", "scalarize.cli", "data", "info", "npz", f"path={bad}"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "not a readable .npz" in proc.stderr and "Traceback" not in proc.stderr


def test_data_info_and_model_info(tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((20, 1, 4, 4), np.uint8), y_a=np.arange(20) % 3)
    assert main(["data", "info", "npz", f"path={path}"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tasks"] == {"a": 3} and info["train_size"] == 16
    assert main(["data", "info", "shapes", "--view", "mdl", "n_train=[8,4,2,1]", "n_val=2",
                 "n_test=2", "image_size=16"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train_per_domain"] == {"flat": 8, "textured": 4, "sketch": 2, "photo": 1}
    assert main(["model", "info", "vit-d3-w48-p4"]) == 0
    assert "90,336 encoder parameters" in capsys.readouterr().out


SEARCH_TINY = ["model.spec=vit-d1-w16-p8", "train.epochs=2", "train.batch_size=32",
               "train.device=cpu", "benchmark.tasks=[shape, count]",
               "benchmark.options={n_train: 96, n_val: 16, n_test: 16, image_size: 16}",
               "search.population=3", "search.interval=1"]


def test_search_then_replay_then_report(tmp_path, capsys):
    out = str(tmp_path / "search")
    config = _config(tmp_path, "seed: 0\nsearch: {strategy: pbt}\n")
    assert main(["search", config, "--out", out, "--quiet", *SEARCH_TINY]) == 0
    printed = capsys.readouterr().out
    assert "best member" in printed and "scalarize replay" in printed
    assert main(["replay", out, "--quiet"]) == 0
    assert "replay-m" in capsys.readouterr().out
    assert main(["report", out]) == 0
    html = (tmp_path / "search" / "report" / "report.html").read_text()
    assert "Population search of the weights" in html and "data:image/png" in html


def test_search_mistakes_are_one_line_and_status_2(tmp_path, capsys):
    out = str(tmp_path / "search")
    config = _config(tmp_path, "seed: 0\n")
    assert main(["search", config, "--out", out]) == 2
    assert "no 'search' section" in capsys.readouterr().err
    config = _config(tmp_path, "seed: 0\nsearch: {population: 0}\n")
    assert main(["search", config, "--out", out]) == 2
    assert "search.population" in capsys.readouterr().err
    assert main(["replay", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a search folder" in err


def test_debug_shows_the_traceback_before_or_after_the_subcommand(tmp_path, capsys):
    import pytest

    from scalarize.errors import ScalarizeError

    config = _config(tmp_path)
    bad = ["model.spec=no-such-model", "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(["train", config, *bad]) == 2  # one line, no traceback
    assert "scalarize: error:" in capsys.readouterr().err
    for argv in (["--debug", "train", config, *bad], ["train", config, *bad, "--debug"],
                 ["train", config, "--debug", *bad]):
        with pytest.raises(ScalarizeError):
            main(argv)
    assert not (tmp_path / "runs").exists()


def _tabular_npz(tmp_path, n=200):
    """scikit-learn's digits as 64 float features with two tasks, in one .npz file."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    path = tmp_path / "digits.npz"
    np.savez(path, x=x[:n].astype(np.float32), y_digit=y[:n], y_high=(y[:n] >= 5).astype(int))
    return path


def test_tabular_data_through_every_command(tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest on a shared machine
    try:
        _every_command(tmp_path, capsys)
    finally:
        torch.set_num_threads(threads)


def _every_command(tmp_path, capsys):
    path = _tabular_npz(tmp_path)
    base = ["benchmark.name=npz", f"benchmark.options={{path: {path}, standardize: true}}",
            "model.spec=mlp-d1-w8", "train.epochs=1", "train.batch_size=32", "train.device=cpu"]
    assert main(["data", "info", "npz", f"path={path}"]) == 0
    assert "tabular (64 features)" in capsys.readouterr().out
    assert main(["train", _config(tmp_path), "--out", str(tmp_path / "runs"), "--quiet",
                 *base]) == 0
    sweep = _config(tmp_path, "seed: 0\nsweep: {capacities: {template: 'mlp-d{depth}-w8', "
                    "axes: {depth: [1, 2]}}, weights: {step: 0.5}, seeds: [0]}\n")
    assert main(["sweep", sweep, "--out", str(tmp_path / "sweep"), "--quiet", "--jobs", "1",
                 *base]) == 0
    assert main(["analyze", "capacity", str(tmp_path / "sweep")]) == 0
    assert "mlp-d2-w8" in capsys.readouterr().out
    compare = _config(tmp_path, "seed: 0\ncompare: {methods: [static, uw], seeds: [0]}\n")
    assert main(["compare", compare, "--out", str(tmp_path / "compare"), "--quiet",
                 "--jobs", "1", *base]) == 0
    search = _config(tmp_path, "seed: 0\nsearch: {strategy: pbt, population: 2, "
                     "interval: 1}\n")
    assert main(["search", search, "--out", str(tmp_path / "search"), "--quiet",
                 *base[:-3], "train.epochs=2", *base[-2:]]) == 0
    assert main(["replay", str(tmp_path / "search"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "sweep")]) == 0


def test_non_image_refusals_are_one_line_and_status_2(tmp_path, capsys):
    path = _tabular_npz(tmp_path, n=60)
    base = ["benchmark.name=npz", f"benchmark.options={{path: {path}}}", "train.epochs=1",
            "train.device=cpu", "--out", str(tmp_path / "runs"), "--quiet"]
    for extra, message in [(["model.spec=vit-d1-w16-p4"], "is for images; these inputs are "
                             "tabular (64 features)"),
                           (["model.spec=mlp-d1-w8", "train.augment={padding: 4}"],
                            "train.augment crops and flips images")]:
        assert main(["train", _config(tmp_path), *base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_model_info_on_inputs_that_are_not_images(capsys):
    assert main(["model", "info", "mlp-d2-w64", "--features", "64"]) == 0
    assert "8,576 encoder parameters" in capsys.readouterr().out  # 2 × (linear + norm)
    assert main(["model", "info", "seq-d1-w16", "--length", "12", "--vocab", "30"]) == 0
    assert "tokens (length 12, vocabulary 30)" in capsys.readouterr().out
    assert main(["model", "info", "resnet8", "--features", "64"]) == 2
    assert "is for images" in capsys.readouterr().err


def test_token_sequences_from_an_npz_train_and_sweep(tmp_path, capsys):
    import torch

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (120, 8))
    path = tmp_path / "tokens.npz"
    np.savez(path, x=ids, y_has_one=(ids == 1).any(axis=1).astype(int),
             y_twos=(ids == 2).sum(axis=1).astype(np.float32), kind_twos="regression")
    assert main(["data", "info", "npz", f"path={path}"]) == 0
    assert "tokens (length 8, vocabulary 20)" in capsys.readouterr().out
    base = ["benchmark.name=npz", f"benchmark.options={{path: {path}, vocab_size: 20}}",
            "model.spec=seq-d1-w16", "train.epochs=1", "train.batch_size=32", "train.device=cpu"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest on a shared machine
    try:
        assert main(["train", _config(tmp_path), "--out", str(tmp_path / "runs"), "--quiet",
                     *base]) == 0
        sweep = _config(tmp_path, "seed: 0\nsweep: {capacities: {template: 'seq-d1-w{width}', "
                        "axes: {width: [16, 32]}}, weights: {step: 1.0}, seeds: [0]}\n")
        assert main(["sweep", sweep, "--out", str(tmp_path / "sweep"), "--quiet", "--jobs", "1",
                     *base]) == 0
    finally:
        torch.set_num_threads(threads)
    assert len(list((tmp_path / "sweep").glob("*/summary.json"))) >= 4
