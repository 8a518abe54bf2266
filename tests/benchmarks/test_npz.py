import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
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
        ({"y_digit": np.full(40, -1)}, "negative labels"),
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
