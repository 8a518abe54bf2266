import numpy as np
import pytest
import torch
import yaml

from scalarize.api import from_arrays, task
from scalarize.api import train as api_train
from scalarize.errors import ScalarizeError
from scalarize.runs.store import RunDir, SearchDir
from scalarize.search.spec import load_search_config
from scalarize.studies.replay import replay
from scalarize.studies.runner import run_search
from scalarize.trained import FORMATS, export_model, load_run, predict_to_file, run_exported
from scalarize.trained.load import run_data
from scalarize.trained.predict import split_inputs
from tests.search.conftest import search_yaml
from tests.trained.conftest import accuracy, trainer_outputs

LOADER = '''
from scalarize.benchmarks import load_benchmark


def load(view, tasks, seed, **options):
    return load_benchmark("shapes", view=view, tasks=tasks, seed=seed, n_train=64, n_val=16,
                          n_test=24, image_size=16)
'''


@pytest.fixture(scope="module")
def pbt(tmp_path_factory):
    where = tmp_path_factory.mktemp("pbt")
    tree = yaml.safe_load(search_yaml(epochs=2))
    tree["search"]["population"] = 3
    (where / "search.yaml").write_text(yaml.safe_dump(tree))
    out = where / "search"
    run_search(load_search_config(where / "search.yaml"), out, progress=False)
    return out


def _scores_its_test_accuracy(model, result) -> None:
    """The member's predictions on its test split score what the search recorded for it."""
    data = run_data(model.source)
    x, _ = split_inputs(data, "test")
    predicted = model.predict(x)
    for t in model.tasks:
        assert accuracy(predicted[t], data.splits["test"].labels[t]) == pytest.approx(
            result.test_acc[t])


def test_a_pbt_member_predicts_what_the_search_scored_on_test(pbt):
    summary = SearchDir(pbt).read_summary()
    for member in ("best", 1):
        model = load_run(pbt, member)
        chosen = summary.best_member if member == "best" else member
        result = next(m for m in summary.members if m.member == chosen)
        _scores_its_test_accuracy(model, result)
        assert f"member {chosen}" in model.source.description
    with pytest.raises(ScalarizeError, match=r"has members 0\.\.2"):
        load_run(pbt, 7)


def test_a_replay_is_a_run_folder(pbt):
    summary = replay(pbt, progress=False)
    folder = pbt / str(summary.run)
    model = load_run(folder)
    data = run_data(model.source)
    x, _ = split_inputs(data, "test")
    predicted = model.predict(x)
    for t in model.tasks:
        assert accuracy(predicted[t], data.splits["test"].labels[t]) == pytest.approx(
            summary.test.acc[t])


def test_an_npz_of_inputs_and_a_loader_give_the_same_predictions(tmp_path, vit_run,
                                                                 monkeypatch):
    model = load_run(vit_run)
    x, _ = split_inputs(run_data(model.source), "test")
    np.savez(tmp_path / "inputs.npz", x=x)
    from_file = predict_to_file(model, tmp_path / "a.npz", str(tmp_path / "inputs.npz"),
                                raw=True)
    assert sorted(from_file) == sorted([*model.tasks, *(f"output_{t}" for t in model.tasks)])
    with np.load(tmp_path / "a.npz") as saved:
        for name, array in from_file.items():
            np.testing.assert_array_equal(saved[name], array)
    (tmp_path / "p30_loader.py").write_text(LOADER)
    monkeypatch.syspath_prepend(str(tmp_path))
    from_loader = predict_to_file(model, tmp_path / "b.npz", "p30_loader:load")
    own = predict_to_file(model, tmp_path / "c.npz", split="test")
    for t in model.tasks:
        np.testing.assert_array_equal(from_loader[t], from_file[t])
        np.testing.assert_array_equal(own[t], from_file[t])


def test_predictions_refuse_to_overwrite_and_say_what_is_wrong(tmp_path, vit_run):
    model = load_run(vit_run)
    out = tmp_path / "preds.npz"
    out.write_bytes(b"mine")
    np.savez(tmp_path / "nox.npz", y=np.zeros(3))
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04 torn")
    cases = [
        (lambda: predict_to_file(model, out, split="test"), "already exists"),
        (lambda: predict_to_file(model, tmp_path / "p.npz"), "give --data"),
        (lambda: predict_to_file(model, tmp_path / "p.npz", str(tmp_path / "nox.npz")),
         "holds no 'x'"),
        (lambda: predict_to_file(model, tmp_path / "p.npz", str(tmp_path / "torn.npz")),
         "not a readable .npz"),
        (lambda: predict_to_file(model, tmp_path / "p.npz", str(tmp_path / "none.npz")),
         "is not a file"),
        (lambda: predict_to_file(model, tmp_path / "p.txt", split="test"), "ending in .npz"),
    ]
    for call, words in cases:
        with pytest.raises(ScalarizeError, match=words) as caught:
            call()
        assert "\n" not in str(caught.value)
    assert out.read_bytes() == b"mine"
    assert not (tmp_path / "p.npz").exists() and not (tmp_path / "p.txt").exists()
    predict_to_file(model, out, split="val", overwrite=True)
    with np.load(out) as saved:
        assert saved["shape"].shape == (16,)


def test_dense_and_regression_tasks_predict_in_their_units(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8)
    labels = {"seg": rng.integers(0, 3, (40, 16, 16)), "area": rng.random(40),
              "edges": rng.random((40, 1, 16, 16)).astype(np.float32)}
    tasks = [task("seg", kind="segmentation", classes=3),
             task("area", kind="regression", dense=False),
             task("edges", kind="regression")]
    data = from_arrays(tasks, train=(x[:30], {k: v[:30] for k, v in labels.items()}),
                       test=(x[30:], {k: v[30:] for k, v in labels.items()}), name="p30dense")
    summary = api_train(data, "vit-d1-w16-p4", out=tmp_path, progress=False,
                        config={"train": {"epochs": 1, "device": "cpu"}})
    folder = tmp_path / str(summary.run)
    model = load_run(folder)
    predicted = model.predict(x[30:])
    assert predicted["seg"].shape == (10, 16, 16) and predicted["seg"].dtype == np.int64
    assert predicted["area"].shape == (10,)
    assert predicted["edges"].shape == (10, 1, 16, 16)
    l1 = float(np.abs(predicted["area"] - labels["area"][30:]).mean())
    assert l1 == pytest.approx(summary.test.metrics["area"]["l1"], rel=1e-5)
    expected = trainer_outputs(folder)  # the data, given from Python, is registered here
    for name, out in model.outputs(x[30:]).items():
        torch.testing.assert_close(out, expected[name], rtol=1e-5, atol=1e-5)
    assert RunDir(folder).load_checkpoint()["record"]["tasks"][0]["kind"] == "segmentation"
    for fmt in FORMATS:  # dense heads (the decoder's resize) export too
        export_model(model, tmp_path / f"dense.{fmt}", fmt)
        got = run_exported(tmp_path / f"dense.{fmt}", fmt, x[30:])
        for name, out in zip(model.head_names, got, strict=True):
            np.testing.assert_allclose(out, expected[name].numpy(), rtol=1e-4, atol=1e-5)



def test_a_trial_search_member_predicts_what_the_search_scored_on_test(tmp_path):
    (tmp_path / "search.yaml").write_text(search_yaml(epochs=2))
    config = load_search_config(tmp_path / "search.yaml", [
        "search.strategy=tpe", "search.population=2", "search.budget=6", "search.startup=1"])
    summary = run_search(config, tmp_path / "tpe", progress=False)
    model = load_run(tmp_path / "tpe")  # the best member, from members/m<id>.pt
    result = next(m for m in summary.members if m.member == summary.best_member)
    _scores_its_test_accuracy(model, result)
