import json
import math

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.cli import main
from scalarize.errors import ScalarizeError


def _write(path, n=40, **extra):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8),
              "y_digit": rng.integers(0, 10, n), "y_parity": rng.integers(0, 2, n)}
    arrays.update(extra)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def test_reads_tasks_and_draws_a_seeded_split(tmp_path):
    path = tmp_path / "d.npz"
    arrays = _write(path)
    data = load_benchmark("npz", path=path)
    assert data.objectives == ("digit", "parity")
    assert sum(len(s) for s in data.splits.values()) == 40
    assert len(data.splits["val"]) == 4 and len(data.splits["test"]) == 4
    # images keep their labels
    train = data.splits["train"]
    row = int(np.flatnonzero((arrays["x"] == train.x[0]).all(axis=(1, 2, 3)))[0])
    assert train.labels["digit"][0] == arrays["y_digit"][row]
    again = load_benchmark("npz", path=path)
    assert np.array_equal(train.x, again.splits["train"].x)


def test_explicit_split_domains_and_float_images(tmp_path):
    path = tmp_path / "d.npz"
    n = 12
    split = np.array(["train"] * 6 + ["val"] * 3 + ["test"] * 3)
    x = np.linspace(0, 1, n * 3 * 4 * 4, dtype=np.float32).reshape(n, 3, 4, 4)
    _write(path, n=n, x=x, split=split, domain=np.arange(n) % 2,
           domain_names=np.array(["real", "sketch"]))
    data = load_benchmark("npz", view="mdl", tasks=["digit"], path=path)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    assert data.objectives == ("real", "sketch")
    assert data.splits["train"].x.dtype == np.uint8
    assert data.splits["train"].x.max() <= 255 and data.splits["test"].x[-1].max() == 255


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"x": None}, "no 'x' array"),
        ({"x": np.zeros((40, 8, 8), np.uint8)}, "N×C×H×W"),
        ({"x": np.full((40, 3, 8, 8), 2.0)}, "scale it to"),
        ({"y_digit": np.zeros(39, np.int64)}, "one label per image"),
        ({"y_digit": np.full(40, -2)}, "holds label -2.*-1 marks a missing label"),
        ({"y_digit": np.zeros(40, np.float32)}, "must be integers"),
        ({"split": np.full(40, 7)}, "'split' must hold"),
        ({"split": np.zeros(40, np.int64)}, "are empty"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, extra, message):
    path = tmp_path / "bad.npz"
    _write(path, **extra)
    with pytest.raises(ScalarizeError, match=message):
        load_benchmark("npz", path=path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ScalarizeError, match="no such file"):
        load_benchmark("npz", path=tmp_path / "nope.npz")
    path = tmp_path / "cut.npz"
    _write(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ScalarizeError, match=r"not a readable \.npz"):
        load_benchmark("npz", path=path)


# -- the grown format: declared and inferred task kinds, domains, a carved val split ----------

def _four_kinds(path, n=64, **extra):
    """A file with a classification, a segmentation, a depth and a regression task (16×16)."""
    rng = np.random.default_rng(1)
    arrays = {"x": rng.integers(0, 256, (n, 3, 16, 16), dtype=np.uint8),
              "y_digit": rng.integers(0, 3, n),
              "y_seg": rng.integers(0, 4, (n, 16, 16)).astype(np.uint8),
              "options_seg": np.array(json.dumps({"classes": 5, "ignore": 255})),
              "y_depth": (rng.random((n, 1, 16, 16)) + 0.5).astype(np.float32),
              "kind_depth": np.array("depth"),
              "y_age": rng.random(n),
              "options_age": np.array('{"tolerance": 0.2}')}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_kinds_are_declared_or_inferred_and_targets_stay_compact(tmp_path):
    path = tmp_path / "d.npz"
    _four_kinds(path, y_pos=np.zeros((64, 2), np.float64) + 0.5,
                y_edges=np.full((64, 2, 16, 16), 7, np.uint16), kind_edges=np.array("regression"),
                options_edges=np.array('{"scale": 0.01, "invalid": 65535}'),
                y_normal=np.zeros((64, 3, 16, 16), np.float32), kind_normal=np.array("normals"))
    data = load_benchmark("npz", path=path)
    kinds = {t.name: (t.kind, t.num_classes, dict(t.options)) for t in data.tasks}
    assert kinds == {
        "age": ("regression", 0, {"tolerance": 0.2, "channels": 1, "dense": False}),
        "depth": ("depth", 0, {}),
        "digit": ("classification", 3, {}),
        "edges": ("regression", 0, {"scale": 0.01, "invalid": 65535, "channels": 2,
                                    "dense": True}),
        "normal": ("normals", 0, {}),
        "pos": ("regression", 0, {"channels": 2, "dense": False}),
        "seg": ("segmentation", 5, {"ignore": 255}),
    }
    labels = data.splits["train"].labels
    assert labels["digit"].dtype == np.int64  # cross-entropy wants int64
    assert labels["seg"].dtype == np.uint8 and labels["seg"].shape[1:] == (16, 16)
    assert labels["depth"].dtype == np.float32 and labels["age"].dtype == np.float32
    assert labels["edges"].dtype == np.int32  # 65535 (invalid) does not fit int16
    assert labels["normal"].dtype == np.uint8 and int(labels["normal"].max()) in (127, 128)
    assert data.info["kinds"]["seg"] == "segmentation"


def test_four_kinds_train_end_to_end(tmp_path, capsys):
    path = tmp_path / "four.npz"
    _four_kinds(path)
    out = tmp_path / "runs"
    argv = ["train", "configs/npz.yaml", f"benchmark.options.path={path}",
            "model.spec=vit-d1-w16-p8", "train.epochs=1", "train.batch_size=16",
            "train.device=cpu", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    (summary,) = out.glob("*/summary.json")
    test = json.loads(summary.read_text())["test"]
    assert set(test["metrics"]) == {"digit", "seg", "depth", "age"}
    for name, metrics in test["metrics"].items():
        assert metrics and all(math.isfinite(v) for v in metrics.values()), name
    assert set(test["metrics"]["seg"]) == {"score", "pixel_acc"}
    assert set(test["metrics"]["depth"]) == {"score", "l1", "abs_rel"}
    assert set(test["metrics"]["age"]) == {"score", "l1"}


def test_domain_names_make_the_mdl_objectives(tmp_path):
    path = tmp_path / "d.npz"
    n = 30
    _write(path, n=n, domain=np.arange(n) % 3,
           domain_names=np.array([b"real", b"clipart", b"sketch"]))  # bytes names decode
    data = load_benchmark("npz", view="mdl", tasks=["digit"], path=path)
    assert data.objectives == ("real", "clipart", "sketch")
    summary = data.summary()
    assert sum(summary["train_per_domain"].values()) == summary["train_size"]
    assert set(summary["test_per_domain"]) == {"real", "clipart", "sketch"}
    mtl = load_benchmark("npz", path=path)  # the MTL view keeps the names for data info
    assert mtl.domains == ("real", "clipart", "sketch")


def _carved(path, seed, **options):
    return load_benchmark("npz", seed=seed, path=path, **options)


def test_val_is_carved_from_train_when_the_split_has_none(tmp_path):
    path = tmp_path / "d.npz"
    n = 50
    split = np.where(np.arange(n) < 40, 0, 2)
    arrays = _write(path, n=n, split=split, x=np.arange(n, dtype=np.uint8)[:, None, None, None]
                    * np.ones((1, 1, 2, 2), np.uint8))

    def rows(data, name):  # each image's pixels are its row number
        return set(data.splits[name].x[:, 0, 0, 0].tolist())

    first, again, other = _carved(path, 0), _carved(path, 0), _carved(path, 1)
    assert len(first.splits["val"]) == 4 and len(first.splits["train"]) == 36
    assert rows(first, "train") | rows(first, "val") == set(range(40))
    assert rows(first, "test") == set(range(40, 50))
    assert rows(first, "val") == rows(again, "val")
    assert rows(first, "val") != rows(other, "val")
    assert "carved from train" in first.info["split"] and "seed 0" in first.info["split"]
    assert len(_carved(path, 0, val_fraction=0.25).splits["val"]) == 10
    val = first.splits["val"]
    assert np.array_equal(val.labels["digit"], arrays["y_digit"][val.x[:, 0, 0, 0]])
    # a file that has val keeps its split as it is
    _write(path, n=n, split=np.where(np.arange(n) < 40, 0, np.arange(n) % 2 + 1))
    assert "carved" not in _carved(path, 0).info["split"]


N = 40
MAP = np.zeros((N, 8, 8), np.uint8)


@pytest.mark.parametrize(
    ("extra", "culprits"),
    [
        ({"y_seg": np.zeros((N, 4, 4), np.uint8)}, ["'y_seg'", "4×4", "8×8"]),
        ({"y_n": np.full((N, 3, 8, 8), np.nan, np.float32), "kind_n": np.array("normals")},
         ["'y_n'", "NaN"]),
        ({"y_seg": MAP.astype(np.int16) - 2}, ["'y_seg'", "class -2", "-1 marks a missing"]),
        ({"y_age": np.array([np.inf] + [0.5] * (N - 1))}, ["'y_age'", "infinite"]),
        ({"y_seg": MAP, "kind_seg": np.array("classification")},
         ["'kind_seg' declares classification", "'y_seg'"]),
        ({"y_a": np.linspace(0, 1, N), "kind_a": np.array("depth")},
         ["'kind_a' declares depth", "'y_a'", "N×H×W"]),
        ({"y_a": np.zeros(N, np.int64), "kind_a": np.array("segmentation")},
         ["'kind_a' declares segmentation", "'y_a'"]),
        ({"y_a": np.zeros(N, np.int64), "kind_a": np.array("mystery")}, ["'kind_a'", "mystery"]),
        ({"y_a": np.zeros(N, np.int64), "kind_a": np.array([1, 2])}, ["'kind_a'", "one string"]),
        ({"y_seg": MAP, "options_seg": np.array("{not json")}, ["'options_seg'", "JSON"]),
        ({"y_seg": MAP, "options_seg": np.array("[1, 2]")}, ["'options_seg'", "JSON object"]),
        ({"y_seg": MAP, "options_seg": np.array('{"scale": 2}')},
         ["'options_seg'", "'scale'", "classes, ignore"]),
        ({"y_seg": MAP + 3, "options_seg": np.array('{"classes": 2}')},
         ["'y_seg'", "class 3", "'options_seg'"]),
        ({"y_age": np.linspace(0, 1, N), "options_age": np.array('{"tolerance": -1}')},
         ["'options_age'", "tolerance"]),
        ({"kind_b": np.array("depth")}, ["'kind_b'", "'y_b'"]),
        ({"y_v": np.zeros((N, 3), np.int64)}, ["'y_v'", "ambiguous", "kind_v"]),
        ({"y_m": np.zeros((N, 3, 8, 8), np.float32) + 0.5}, ["'y_m'", "kind_m"]),
        ({"y_d": np.ones((N, 8, 8), np.float32)}, ["'y_d'", "whole numbers", "kind_d"]),
        ({"y_n": np.full((N, 3, 8, 8), 2.0, np.float32), "kind_n": np.array("normals")},
         ["'y_n'", "[-1, 1]"]),
        ({"y_s": np.array(["a"] * N)}, ["'y_s'", "integers or floats"]),
        ({"domain_names": np.array(["a", "b"])}, ["'domain_names'", "'domain'"]),
        ({"domain": np.arange(N) % 2, "domain_names": np.array([1, 2])}, ["'domain_names'"]),
        ({"domain": np.arange(N) % 2, "domain_names": np.array(["a", " "])},
         ["'domain_names'", "empty"]),
    ],
)
def test_grown_format_refusals_are_one_line_naming_the_member(tmp_path, extra, culprits):
    path = tmp_path / "bad.npz"
    _write(path, **extra)
    with pytest.raises(ScalarizeError) as error:
        load_benchmark("npz", path=path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for culprit in culprits:
        assert culprit in message, (culprit, message)


@pytest.mark.parametrize(("extra", "task", "culprits"), [
    ({}, "digit", ["'domain'", "multi-domain"]),
    ({"domain": np.arange(N) % 2, "y_age": np.linspace(0, 1, N)}, "age",
     ["'y_age' (regression)", "classification"]),
])
def test_mdl_view_refusals_name_the_member(tmp_path, extra, task, culprits):
    path = tmp_path / "bad.npz"
    _write(path, **extra)
    with pytest.raises(ScalarizeError) as error:
        load_benchmark("npz", view="mdl", tasks=[task], path=path)
    for culprit in culprits:
        assert culprit in str(error.value)


def test_features_tokens_and_sequences_are_read_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    y = {"y_label": rng.integers(0, 3, n), "y_size": rng.standard_normal(n).astype(np.float32)}
    features = rng.standard_normal((n, 7)) * 40  # far outside [0, 1]: taken as they are
    np.savez(tmp_path / "tab.npz", x=features, **y)
    data = load_benchmark("npz", path=tmp_path / "tab.npz", standardize=True)
    assert data.input.describe() == "tabular (7 features)" and data.input.standardize
    assert data.splits["train"].x.dtype == np.float32
    np.testing.assert_allclose(np.sort(np.concatenate([s.x for s in data.splits.values()]),
                                       axis=0), np.sort(features, axis=0), rtol=1e-6)
    np.savez(tmp_path / "tok.npz", x=rng.integers(0, 30, (n, 9)).astype(np.int32), **y)
    tokens = load_benchmark("npz", path=tmp_path / "tok.npz", vocab_size=30)
    assert (tokens.input.kind, tokens.input.vocab_size) == ("tokens", 30)
    assert tokens.splits["test"].x.dtype == np.int64
    np.savez(tmp_path / "seq.npz", x=rng.random((n, 9, 2), dtype=np.float32), **y)
    assert load_benchmark("npz", path=tmp_path / "seq.npz").input.shape == (9, 2)


@pytest.mark.parametrize(("x", "extra", "options", "message"), [
    (np.zeros((20, 4), np.float32), {"y_map": np.zeros((20, 4, 4), np.uint8)}, {},
     "'y_map' holds maps .* but 'x' is not images"),
    (np.zeros((20, 4, 3), np.int64), {}, {}, "N×L×F float sequences"),
    (np.full((20, 4), np.nan, np.float32), {}, {}, "NaN or infinite"),
    (np.arange(80).reshape(20, 4), {}, {"vocab_size": 10},
     "token id 1[0-9], outside .*from vocab_size"),
    (np.zeros((20, 4), np.int64), {}, {"standardize": True}, "standardize is for float"),
])
def test_non_image_inputs_it_cannot_take_are_one_line(tmp_path, x, extra, options, message):
    np.savez(tmp_path / "bad.npz", x=x, y_label=np.zeros(20, np.int64), **extra)
    with pytest.raises(ScalarizeError, match=message) as caught:
        load_benchmark("npz", path=tmp_path / "bad.npz", **options)
    assert "\n" not in str(caught.value)
