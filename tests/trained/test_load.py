import numpy as np
import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.runs.store import RunDir
from scalarize.trained import load_run
from scalarize.trained.load import run_data
from scalarize.trained.predict import split_inputs
from tests.trained.conftest import accuracy, train, trainer_outputs


def test_outputs_equal_the_trainers_evaluation_outputs_on_the_test_split(vit_run):
    model = load_run(vit_run)
    x, _ = split_inputs(run_data(model.source), "test")
    expected = trainer_outputs(vit_run)
    got = model.outputs(x, batch_size=5)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)


def test_predictions_score_the_summarys_test_accuracy(vit_run):
    model = load_run(vit_run)
    data = run_data(model.source)
    x, _ = split_inputs(data, "test")
    predicted = model.predict(x)
    summary = RunDir(vit_run).read_summary()
    assert list(predicted) == summary.objectives
    for task, labels in data.splits["test"].labels.items():
        assert predicted[task].dtype == np.int64
        assert accuracy(predicted[task], labels) == pytest.approx(summary.test.acc[task])


def test_loading_leaves_the_callers_random_generator_alone(vit_run):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_run(vit_run)
    assert torch.equal(torch.rand(3), expected)


def test_float_images_in_0_1_are_the_uint8_images(vit_run):
    model = load_run(vit_run)
    x = np.random.default_rng(0).integers(0, 256, (4, *model.input_shape), dtype=np.uint8)
    for name, out in model.outputs(x.astype(np.float32) / 255).items():
        torch.testing.assert_close(out, model.outputs(x)[name], rtol=1e-5, atol=1e-5)


def test_a_checkpoint_without_a_record_is_read_through_the_runs_data(tmp_path, vit_run):
    run = RunDir(vit_run)
    state = run.load_checkpoint()
    assert state["record"]["inputs"]["raw"] == "uint8"
    del state["record"]  # as a checkpoint written before the record was
    old = RunDir(tmp_path / "old")
    old.path.mkdir()
    (old.path / "config.yaml").write_text((vit_run / "config.yaml").read_text())
    old.save_checkpoint(state)
    x = np.zeros((2, 3, 16, 16), dtype=np.uint8)
    for name, out in load_run(old.path).outputs(x).items():
        torch.testing.assert_close(out, load_run(vit_run).outputs(x)[name])


def test_multi_domain_predictions_go_through_each_examples_domain_head(mdl_run):
    model = load_run(mdl_run)
    data = run_data(model.source)
    x, domain = split_inputs(data, "test")
    assert model.head_names == data.domains and domain is not None
    predicted = model.predict(x, domain)[model.tasks[0]]
    labels = data.splits["test"].labels[model.tasks[0]]
    summary = RunDir(mdl_run).read_summary()
    for d, name in enumerate(data.domains):
        rows = domain == d
        assert accuracy(predicted[rows], labels[rows]) == pytest.approx(summary.test.acc[name])
    by_name = model.predict(x, [data.domains[d] for d in domain])[model.tasks[0]]
    np.testing.assert_array_equal(by_name, predicted)
    with pytest.raises(ScalarizeError, match="say which domain"):
        model.predict(x)
    with pytest.raises(ScalarizeError, match="this run has domains"):
        model.predict(x, "atlantis")


def test_a_shared_head_needs_no_domain(tmp_path):
    from tests.trained.conftest import MDL

    model = load_run(train(tmp_path, *MDL, "model.shared_head=true"))
    assert model.head_names == ("shared",)
    x = np.zeros((3, *model.input_shape), dtype=np.uint8)
    assert model.predict(x)[model.tasks[0]].shape == (3,)


def test_mistakes_are_one_line(tmp_path, vit_run):
    model = load_run(vit_run)
    cases = [
        (lambda: load_run(tmp_path / "nowhere"), "not a folder"),
        (lambda: load_run(tmp_path), "holds no run"),
        (lambda: load_run(vit_run, member=2), "not a search"),
        (lambda: model.predict(np.zeros((2, 3, 8, 8), np.uint8)), "N×3×16×16"),
        (lambda: model.predict(np.zeros((2, 3, 16, 16), bool)), "dtype"),
        (lambda: model.restricted(["nope"]), "no head 'nope'"),
    ]
    for call, words in cases:
        with pytest.raises(ScalarizeError, match=words) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_a_run_without_a_checkpoint_is_refused(tmp_path, vit_run):
    (tmp_path / "config.yaml").write_text((vit_run / "config.yaml").read_text())
    with pytest.raises(ScalarizeError, match="no checkpoint yet"):
        load_run(tmp_path)


class _FloatImages(torch.utils.data.Dataset):
    """A streamed split of float images (taken as they are by the trainer)."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 3, 8, 8)).astype(np.float32)
        self.y = rng.integers(0, 2, n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {"odd": int(self.y[i])}


def test_a_run_on_streamed_float_inputs_takes_them_as_they_are(tmp_path):
    from scalarize.api import from_datasets, task
    from scalarize.api import train as api_train

    data = from_datasets([task("odd", classes=2)], train=_FloatImages(40, 0),
                         test=_FloatImages(12, 1), name="p30floats")
    summary = api_train(data, "vit-d1-w16-p4", out=tmp_path, progress=False,
                        config={"train": {"epochs": 1, "device": "cpu"}})
    model = load_run(tmp_path / str(summary.run))
    assert model.record.inputs.raw == "float" and model.input_dtype == torch.float32
    test = _FloatImages(12, 1)
    predicted = model.predict(test.x)["odd"]
    assert accuracy(predicted, test.y) == pytest.approx(summary.test.acc["odd"])
    expected = trainer_outputs(tmp_path / str(summary.run))
    torch.testing.assert_close(model.outputs(test.x)["odd"], expected["odd"])
    with pytest.raises(ScalarizeError, match="float images as its dataset gave them"):
        model.predict((test.x * 255).astype(np.uint8))


def test_in_memory_float_images_are_recorded_as_the_trainer_scales_them():
    """In-memory float images are scaled by 1/255 like uint8 ones (as they always were): the
    record's transform gives the model exactly what the trainer's batches hold."""
    from scalarize.benchmarks.base import Split
    from scalarize.benchmarks.inputs import infer_input
    from scalarize.training.data import input_stats, serve
    from scalarize.training.model_record import InputTransform

    rng = np.random.default_rng(0)
    split = Split(rng.uniform(0, 255, (6, 3, 4, 4)).astype(np.float32),
                  {"t": np.zeros(6, np.int64)})
    inputs = infer_input(split.x)
    mean, std = input_stats(split, inputs.kind)
    served = serve(split, torch.device("cpu"), mean, std, kind=inputs.kind).batch(slice(0, 6))
    transform = InputTransform.of(split, inputs, (mean, std))
    assert transform.raw == "float255"
    torch.testing.assert_close(transform.apply(torch.from_numpy(split.x)), served.x)
