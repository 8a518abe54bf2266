"""``scalarize predict`` and ``scalarize export`` on a trained run."""

import numpy as np
import pytest

from scalarize.cli import main
from scalarize.trained import load_run, run_exported
from tests.test_cli import TINY


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    where = tmp_path_factory.mktemp("cli")
    config = where / "c.yaml"
    config.write_text("seed: 0\n")
    assert main(["train", str(config), "--out", str(where / "runs"), "--quiet", *TINY]) == 0
    return next((where / "runs").iterdir())


def test_predict_the_runs_test_split_then_an_npz(tmp_path, run, capsys):
    out = tmp_path / "preds.npz"
    assert main(["predict", str(run), "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "shape (16,)" in printed and "final weights (epoch 1)" in printed
    model = load_run(run)
    with np.load(out) as saved:
        assert sorted(saved.files) == sorted(model.tasks)
        test = dict(saved)
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["predict", str(run), "--data", str(tmp_path / "x.npz"), "--out",
                 str(tmp_path / "mine.npz"), "--raw"]) == 0
    with np.load(tmp_path / "mine.npz") as saved:
        assert saved["shape"].shape == (5,) and saved["output_shape"].shape == (5, 4)
        np.testing.assert_array_equal(saved["shape"], model.predict(x)["shape"])
    assert test["shape"].dtype == np.int64


def test_export_then_run_it(tmp_path, run, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert "outputs ['shape', 'colour', 'size', 'count', 'balance']" in capsys.readouterr().out
    x = np.zeros((3, 3, 16, 16), dtype=np.uint8)
    expected = load_run(run).outputs(x)
    for name, got in zip(expected, run_exported(out, "onnx", x), strict=True):
        np.testing.assert_allclose(got, expected[name].numpy(), rtol=1e-4, atol=1e-5)


def test_mistakes_exit_2_with_one_line_and_keep_what_exists(tmp_path, run, capsys):
    kept = tmp_path / "kept.npz"
    kept.write_bytes(b"mine")
    cases = [
        (["predict", str(run), "--split", "test", "--out", str(kept)], "already exists"),
        (["predict", str(run), "--out", str(tmp_path / "p.npz")], "give --data"),
        (["predict", str(tmp_path), "--split", "test", "--out", str(tmp_path / "p.npz")],
         "holds no run"),
        (["export", str(run), "--format", "onnx", "--out", str(kept)], "already exists"),
        (["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
          "--member", "2"], "not a search"),
        (["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
          "--domain", "sketch"], "no head 'sketch'"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert kept.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.npz"]
    with pytest.raises(SystemExit) as exited:
        main(["export", str(run), "--format", "keras", "--out", "m"])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err
