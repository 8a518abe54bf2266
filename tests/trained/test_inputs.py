"""Trained runs on inputs that are not images: a tabular MLP whose features were standardised
with training statistics, and a sequence encoder on token ids. Predictions score the run's own
test accuracy (so the recorded standardisation is the one the run trained with) and every
export format gives the loaded model's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import scalarize.api as sz
from scalarize.errors import ScalarizeError
from scalarize.trained import FORMATS, export_model, load_run, run_exported

RECIPE = {"train": {"epochs": 2, "batch_size": 32, "device": "cpu", "lr": 3e-3}}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """An MLP on scikit-learn's digits (64 float features, standardised), with its test
    split."""
    x, y = load_digits(return_X_y=True)
    x = x[:400].astype(np.float32) * 3.0 + 5.0  # far from standardised as given
    labels = {"digit": y[:400], "high": (y[:400] >= 5).astype(int)}
    tasks = [sz.task("digit", classes=10), sz.task("high", classes=2)]
    data = sz.from_arrays(tasks, train=(x[:320], {k: v[:320] for k, v in labels.items()}),
                          test=(x[320:], {k: v[320:] for k, v in labels.items()}),
                          name="digits", standardize=True)
    out = tmp_path_factory.mktemp("digits")
    summary = sz.train(data, "mlp-d2-w32", config=RECIPE, out=out, progress=False)
    return out / str(summary.run), summary, x[320:], {k: v[320:] for k, v in labels.items()}


def test_a_tabular_runs_predictions_score_its_test_accuracy(digits_run):
    folder, summary, x, labels = digits_run
    model = load_run(folder)
    assert model.record.input.kind == "tabular" and model.record.inputs.mean is not None
    predicted = model.predict(x)
    for task in ("digit", "high"):
        assert float((predicted[task] == labels[task]).mean()) == pytest.approx(
            summary.test.acc[task], abs=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_tabular_run_exports_with_its_standardisation(tmp_path, digits_run, fmt):
    folder, _, x, _ = digits_run
    model = load_run(folder)
    expected = model.outputs(x)
    export_model(model, tmp_path / f"m.{fmt}", fmt)
    got = run_exported(tmp_path / f"m.{fmt}", fmt, x)
    for name, out in zip(model.head_names, got, strict=True):
        np.testing.assert_allclose(out, expected[name].numpy(), rtol=1e-4, atol=1e-5)


def test_a_token_run_round_trips_and_refuses_unknown_ids(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, size=(96, 7))
    labels = (ids == 3).any(axis=1).astype(int)
    data = sz.from_arrays([sz.task("has3", classes=2)], train=(ids[:80], labels[:80]),
                          test=(ids[80:], labels[80:]), name="tok")
    summary = sz.train(data, "seq-d1-w16", config=RECIPE, out=tmp_path / "runs",
                       progress=False)
    model = load_run(tmp_path / "runs" / str(summary.run))
    assert model.input_dtype == torch.int64
    predicted = model.predict(ids[80:])["has3"]
    assert float((predicted == labels[80:]).mean()) == pytest.approx(summary.test.acc["has3"],
                                                                     abs=1e-6)
    export_model(model, tmp_path / "m.pt2", "exported-program")
    got = run_exported(tmp_path / "m.pt2", "exported-program", ids[80:])
    np.testing.assert_allclose(got[0], model.outputs(ids[80:])["has3"].numpy(), rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ScalarizeError, match=r"vocabulary is 0\.\.8"):
        model.predict(np.full((2, 7), 9))


def test_an_mmoe_on_tabular_features_trains_predicts_and_exports(tmp_path):
    """Experts and gates over tabular features: per-task features through load, predict and
    export."""
    x, y = load_digits(return_X_y=True)
    labels = {"digit": y[:200], "high": (y[:200] >= 5).astype(int)}
    tasks = [sz.task("digit", classes=10), sz.task("high", classes=2)]
    data = sz.from_arrays(tasks, train=(x[:160], {k: v[:160] for k, v in labels.items()}),
                          test=(x[160:200], {k: v[160:] for k, v in labels.items()}),
                          name="digits", standardize=True)
    summary = sz.train(data, "mmoe-e2-w16", config=RECIPE, out=tmp_path / "runs",
                       progress=False)
    model = load_run(tmp_path / "runs" / str(summary.run))
    assert model.model.per_task
    predicted = model.predict(x[160:200])
    assert float((predicted["high"] == labels["high"][160:]).mean()) == pytest.approx(
        summary.test.acc["high"], abs=1e-6)
    export_model(model, tmp_path / "m.onnx", "onnx")
    got = run_exported(tmp_path / "m.onnx", "onnx", x[160:200].astype(np.float32))
    expected = model.outputs(x[160:200].astype(np.float32))
    for name, out in zip(model.head_names, got, strict=True):
        np.testing.assert_allclose(out, expected[name].numpy(), rtol=1e-4, atol=1e-5)
