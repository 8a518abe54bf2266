"""Data that is not images through the Python API: scikit-learn's bundled tabular sets
(``digits`` as 64 features with two tasks, ``linnerud``'s three regression targets), generated
token and float sequences, in memory and streamed; every command (train, sweep, compare,
search, replay, analyses, report); refusals in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_linnerud

import scalarize.api as sz
from scalarize.errors import ScalarizeError
from scalarize.runs.store import RunDir

RECIPE = {"train": {"epochs": 1, "batch_size": 32, "device": "cpu", "lr": 3e-3}}
DIGITS = [sz.task("digit", classes=10), sz.task("high", classes=2)]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices train fastest on one thread of a shared machine; put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _digits(n: int = 300, standardize: bool = True) -> sz.Dataset:
    x, y = load_digits(return_X_y=True)
    labels = {"digit": y[:n], "high": (y[:n] >= 5).astype(int)}
    cut = n * 4 // 5
    return sz.from_arrays(DIGITS, train=(x[:cut], {k: v[:cut] for k, v in labels.items()}),
                          test=(x[cut:n], {k: v[cut:] for k, v in labels.items()}),
                          name="digits", standardize=standardize)


def test_digits_as_features_learn_both_tasks(tmp_path):
    data = _digits(n=1797)
    assert data.input.describe() == "tabular (64 features)"
    assert data.summary()["input"] == "tabular (64 features)"
    summary = sz.train(data, "mlp-d2-w64", out=tmp_path, progress=False,
                       config={"train": {**RECIPE["train"], "epochs": 3, "batch_size": 64}})
    assert summary.test.acc["digit"] > 0.5  # chance: 0.1
    assert summary.test.acc["high"] > 0.7  # chance: about 0.5


def test_features_are_standardised_with_training_statistics_recorded_in_the_run(tmp_path):
    data = _digits()
    summary = sz.train(data, "mlp-d1-w16", config=RECIPE, out=tmp_path, progress=False)
    checkpoint = RunDir(tmp_path / str(summary.run)).load_checkpoint()
    assert checkpoint is not None
    saved = checkpoint["record"]
    record = saved["inputs"]
    train = data.splits["train"].x  # the training split only (val carved out of it)
    assert saved["input"] == {"kind": "tabular", "shape": [64], "vocab_size": None,
                              "standardize": True}
    np.testing.assert_allclose(record["mean"], train.mean(axis=0), rtol=1e-5, atol=1e-6)
    std = train.std(axis=0)
    np.testing.assert_allclose(record["std"], np.where(std < 1e-12, 1.0, std), rtol=1e-4)
    one = sz.train(data, "mlp-d1-w16", config={**RECIPE, "benchmark": {"tasks": ["digit"]}},
                   out=tmp_path / "one", progress=False)  # a task subset keeps the inputs' options
    kept_one = RunDir(tmp_path / "one" / str(one.run)).load_checkpoint()
    assert kept_one is not None and kept_one["record"]["inputs"]["mean"] == record["mean"]
    raw = sz.train(_digits(standardize=False), "mlp-d1-w16", config=RECIPE,
                   out=tmp_path / "raw", progress=False)
    kept = RunDir(tmp_path / "raw" / str(raw.run)).load_checkpoint()
    assert kept is not None and kept["record"]["inputs"]["mean"] is None  # taken as they are


def test_linnerud_three_regression_targets(tmp_path):
    x, y = load_linnerud(return_X_y=True)
    names = ["weight", "waist", "pulse"]
    tasks = [sz.task(n, kind="regression", dense=False) for n in names]
    labels = {n: y[:, i].astype(np.float32) for i, n in enumerate(names)}
    data = sz.from_arrays(tasks, train=(x[:16], {k: v[:16] for k, v in labels.items()}),
                          test=(x[16:], {k: v[16:] for k, v in labels.items()}),
                          name="linnerud", standardize=True, val_share=0.25)
    summary = sz.train(data, "mlp-d1-w8", config={"train": {**RECIPE["train"], "batch_size": 4}},
                       out=tmp_path, progress=False)
    assert summary.objectives == names
    assert all(np.isfinite(summary.test.loss[n]) for n in names)


def _sequences(n: int = 120, length: int = 10, vocab: int = 12, seed: int = 0):
    """Token ids whose tasks are: does token 1 occur, and how many 2s are there."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (n, length))
    return ids, {"has_one": (ids == 1).any(axis=1).astype(int),
                 "twos": (ids == 2).sum(axis=1).astype(np.float32)}


SEQ_TASKS = [sz.task("has_one", classes=2), sz.task("twos", kind="regression", dense=False)]


def test_token_sequences_train_with_their_vocabulary(tmp_path):
    ids, labels = _sequences()
    data = sz.from_arrays(SEQ_TASKS, train=(ids[:100], {k: v[:100] for k, v in labels.items()}),
                          test=(ids[100:], {k: v[100:] for k, v in labels.items()}), name="tok")
    assert data.input.kind == "tokens" and data.input.vocab_size == 12
    summary = sz.train(data, "seq-d1-w16", config=RECIPE, out=tmp_path, progress=False)
    assert summary.model.spec == "seq-d1-w16" and summary.model.params > 0


def test_float_sequences_train(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 6, 3)).astype(np.float32)
    labels = {"up": (x[:, :, 0].sum(axis=1) > 0).astype(int)}
    data = sz.from_arrays([sz.task("up", classes=2)], train=(x[:64], labels["up"][:64]),
                          test=(x[64:], labels["up"][64:]), name="floats", standardize=True)
    assert data.input.describe() == "sequences (length 6, 3 features)"
    for spec in ("seq-d1-w16", "mlp-d1-w8"):  # an MLP takes them flattened
        assert sz.train(data, spec, config=RECIPE, out=tmp_path, progress=False).test.acc


def test_a_missing_feature_is_one_line(tmp_path):
    x, y = load_digits(return_X_y=True)
    x = x[:60].copy()
    x[41, 3] = np.nan
    data = sz.from_arrays([sz.task("digit", classes=10)], train=(x[:50], y[:50]),
                          test=(x[50:], y[50:60]), val=(x[50:], y[50:60]))
    with pytest.raises(ScalarizeError, match="train split, item 41: its input holds NaN") \
            as caught:
        sz.train(data, "mlp-d1-w8", config=RECIPE, out=tmp_path, progress=False)
    assert "\n" not in str(caught.value)


def test_an_unseen_token_in_test_is_one_line():
    ids, labels = _sequences()
    test_ids = ids[100:].copy()
    test_ids[3, 2] = 12  # the training split's ids go 0..11
    with pytest.raises(ScalarizeError, match=r"test inputs holds token id 12, outside the "
                       r"vocabulary 0\.\.11") as caught:
        sz.from_arrays(SEQ_TASKS, train=(ids[:100], {k: v[:100] for k, v in labels.items()}),
                       test=(test_ids, {k: v[100:] for k, v in labels.items()}))
    assert "\n" not in str(caught.value)
    data = sz.from_arrays(SEQ_TASKS, vocab_size=13,
                          train=(ids[:100], {k: v[:100] for k, v in labels.items()}),
                          test=(test_ids, {k: v[100:] for k, v in labels.items()}))
    assert data.input.vocab_size == 13


class Rows(torch.utils.data.Dataset):
    """Streamed rows: float features or token ids per item."""

    def __init__(self, x, labels):
        self.x, self.labels = x, labels

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {k: v[i] for k, v in self.labels.items()}


def test_streamed_features_and_tokens_train(tmp_path):
    x, y = load_digits(return_X_y=True)
    x = x[:200].astype(np.float32)
    labels = {"digit": y[:200], "high": (y[:200] >= 5).astype(int)}
    data = sz.from_datasets(DIGITS, train=Rows(x[:160], labels), test=Rows(x[160:], labels),
                            standardize=True)
    assert data.input.describe() == "tabular (64 features)"
    config = {"train": {**RECIPE["train"], "workers": 0}}
    assert sz.train(data, "mlp-d1-w8", config=config, out=tmp_path, progress=False).test.acc
    ids, seq_labels = _sequences()
    with pytest.raises(ScalarizeError, match="streamed token ids; give the vocabulary"):
        sz.from_datasets(SEQ_TASKS, train=Rows(ids, seq_labels), test=Rows(ids, seq_labels))
    test_ids = ids.copy()
    test_ids[5, 0] = 40
    tokens = sz.from_datasets(SEQ_TASKS, train=Rows(ids, seq_labels),
                              test=Rows(test_ids, seq_labels), vocab_size=12)
    with pytest.raises(ScalarizeError, match=r"test split, item 5.*token id 40 is outside"):
        sz.train(tokens, "seq-d1-w16", config=config, out=tmp_path / "t", progress=False)


def test_image_steps_on_features_are_refused_in_one_line(tmp_path):
    data = _digits()
    with pytest.raises(ScalarizeError, match=r"train\.augment crops and flips images; these "
                       r"inputs are tabular"):
        sz.train(data, "mlp-d1-w8", out=tmp_path, progress=False,
                 config={"train": {**RECIPE["train"], "augment": {"padding": 2}}})
    with pytest.raises(ScalarizeError, match="is for images; these inputs are tabular"):
        sz.train(data, "resnet8", config=RECIPE, out=tmp_path, progress=False)
    x, _ = load_digits(return_X_y=True)
    seg = [sz.task("mask", kind="segmentation", classes=2)]
    maps = (x[:40] > 8).astype(np.uint8).reshape(40, 8, 8)
    dense = sz.from_arrays(seg, train=(x[:32], maps[:32]), test=(x[32:40], maps[32:]))
    with pytest.raises(ScalarizeError, match=r"task 'mask' is dense .* dense tasks need images"):
        sz.train(dense, "mlp-d1-w8", config=RECIPE, out=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # nothing written


def test_every_command_on_features(tmp_path):
    data = _digits(n=200)
    runs = sz.sweep(data, "mlp-d1-w8", {"capacities": {"template": "mlp-d{depth}-w{width}",
                                                       "axes": {"depth": [1, 2], "width": [8]}},
                                        "weights": {"step": 0.5}, "seeds": [0]},
                    config=RECIPE, out=tmp_path / "sweep", progress=False)
    assert set(runs["capacity"]) == {"mlp-d1-w8", "mlp-d2-w8"}
    per_capacity = sz.capacity(tmp_path / "sweep")["per_capacity"]
    assert set(per_capacity["capacity"]) == {"mlp-d1-w8", "mlp-d2-w8"}
    table = sz.compare(data, "mlp-d1-w8", ["static", "uw", "pcgrad"], seeds=[0],
                       config=RECIPE, out=tmp_path / "compare", progress=False)
    assert len(table) >= 3
    found = sz.search(data, "mlp-d1-w8", {"strategy": "pbt", "population": 2, "interval": 1},
                      config={"train": {**RECIPE["train"], "epochs": 2}},
                      out=tmp_path / "search", progress=False)
    assert found.objectives == ["digit", "high"]
    replayed = sz.replay(tmp_path / "search", progress=False)
    assert replayed.objectives == ["digit", "high"]
    html, markdown = sz.report(tmp_path / "sweep")
    assert html.exists() and markdown.exists()
    probed = {"train": RECIPE["train"], "probes": {"conflicts": {"every": 2}},
              "method": {"name": "pcgrad"}}
    sz.train(data, "mlp-d1-w8", config=probed, out=tmp_path / "probed", progress=False)
    assert not sz.conflicts(tmp_path / "probed")["curves"].empty


def test_the_multi_domain_view_on_features(tmp_path):
    x, y = load_digits(return_X_y=True)
    domains = {"first": (x[:100], y[:100]), "second": (x[100:160], y[100:160])}
    tests = {"first": (x[200:230], y[200:230]), "second": (x[230:260], y[230:260])}
    data = sz.from_arrays([sz.task("digit", classes=10)], train=domains, test=tests,
                          standardize=True)
    assert data.objectives == ("first", "second") and data.input.kind == "tabular"
    summary = sz.train(data, "mlp-d1-w16", out=tmp_path, progress=False,
                       config={**RECIPE, "scalarization": {"weights": [0.5, 0.5]}})
    assert summary.objectives == ["first", "second"]


def test_feature_methods_take_tabular_features_and_refuse_only_task_specific_paths(tmp_path):
    """gradnorm and mgda_ub work on one shared feature tensor: an MLP on features has one; an
    MMoE on the same features gives each task its own and is refused in one line."""
    data = _digits(n=120)
    for method in ("gradnorm", "mgda_ub"):
        config = {**RECIPE, "method": {"name": method}}
        assert sz.train(data, "mlp-d1-w8", config=config, out=tmp_path / method,
                        progress=False).test.acc
        with pytest.raises(ScalarizeError, match=f"method '{method}' works on one feature"):
            sz.train(data, "mmoe-e2-w8", config=config, out=tmp_path / f"{method}-mmoe",
                     progress=False)
    assert not (tmp_path / "gradnorm-mmoe").exists() or not any(
        (tmp_path / "gradnorm-mmoe").iterdir())
