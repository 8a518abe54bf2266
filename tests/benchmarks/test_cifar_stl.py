"""CIFAR-10 + STL-10 readers against tiny fixtures written in the official formats."""

import pickle

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.cifar_stl import (
    SHARED_CLASSES,
    read_cifar_batch,
    read_stl,
    resize_area,
)
from scalarize.errors import ScalarizeError

PER_BATCH, STL_TRAIN, STL_TEST = 6, 8, 5


def _cifar_images(n: int, offset: int) -> np.ndarray:
    # pixel (c, row, col) of image i encodes everything, so positions can be checked
    i, c, r, k = np.meshgrid(np.arange(n) + offset, np.arange(3), np.arange(32), np.arange(32),
                             indexing="ij")
    return ((i * 7 + c * 50 + r * 3 + k) % 256).astype(np.uint8)


def _write_cifar(root, n=PER_BATCH):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, offset in [*[(f"data_batch_{b}", b * 100) for b in range(1, 6)],
                         ("test_batch", 900)]:
        images = _cifar_images(n, offset)
        batch = {b"data": images.reshape(n, -1), b"labels": [(offset + j) % 10 for j in range(n)],
                 b"batch_label": name.encode()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)


def _stl_images(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)


def _write_stl(root):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for split, n in [("train", STL_TRAIN), ("test", STL_TEST)]:
        images = _stl_images(n)
        # official layout: each image column-major (channel, column, row)
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")


@pytest.fixture()
def root(tmp_path):
    _write_cifar(tmp_path)
    _write_stl(tmp_path)
    return tmp_path


def test_cifar_batch_reader_gives_known_pixels_and_labels(root):
    x, y = read_cifar_batch(root / "cifar-10-batches-py" / "data_batch_2")
    assert x.shape == (PER_BATCH, 3, 32, 32) and x.dtype == np.uint8
    assert x[1, 2, 5, 9] == (201 * 7 + 2 * 50 + 5 * 3 + 9) % 256
    assert y.tolist() == [(200 + j) % 10 for j in range(PER_BATCH)]


def test_stl_reader_undoes_the_column_major_layout(root):
    x, y = read_stl(root / "stl10_binary" / "train_X.bin", root / "stl10_binary" / "train_y.bin")
    expected = _stl_images(STL_TRAIN)
    assert np.array_equal(x, expected)
    assert y.tolist() == [j % 10 for j in range(STL_TRAIN)]


def test_area_resize_is_exact_mean_pooling():
    x = _stl_images(2)
    small = resize_area(x, 32)
    block = x[1, 0, 3:6, 6:9].astype(float).mean()
    assert small.shape == (2, 3, 32, 32) and small[1, 0, 1, 2] == round(block)


def test_two_domains_with_their_own_classes(root):
    data = load_benchmark("cifar10_stl10", view="mdl", root=root, val_fraction=0.2)
    assert data.domains == ("cifar10", "stl10") and data.objectives == ("cifar10", "stl10")
    assert data.image_shape == (3, 32, 32)
    train, val, test = (data.splits[s] for s in ("train", "val", "test"))
    assert len(train) + len(val) == 5 * PER_BATCH + STL_TRAIN
    assert np.bincount(val.domain).tolist() == [6, 2]
    assert np.bincount(test.domain).tolist() == [PER_BATCH, STL_TEST]
    assert data.tasks[0].num_classes == 10
    stl_test = test.x[test.domain == 1]
    assert np.array_equal(stl_test, resize_area(_stl_images(STL_TEST), 32))


def test_shared_classes_drop_frog_and_monkey(root):
    data = load_benchmark("cifar10_stl10", view="mdl", root=root, shared_classes=True,
                          val_fraction=0.1)
    assert data.tasks[0].num_classes == len(SHARED_CLASSES) == 9
    test = data.splits["test"]
    cifar_labels = [(900 + j) % 10 for j in range(PER_BATCH)]  # 0..5: no frog (6)
    assert test.labels["label"][test.domain == 0].tolist() == cifar_labels
    # STL labels 0..4 = airplane, bird, car, cat, deer -> shared 0, 2, 1, 3, 4
    assert test.labels["label"][test.domain == 1].tolist() == [0, 2, 1, 3, 4]


def test_missing_folder_says_where_to_get_the_files(tmp_path):
    _write_cifar(tmp_path)
    with pytest.raises(ScalarizeError, match=r"stl10_binary\.tar\.gz"):
        load_benchmark("cifar10_stl10", view="mdl", root=tmp_path)
    with pytest.raises(ScalarizeError, match="is not a folder"):
        load_benchmark("cifar10_stl10", view="mdl", root=tmp_path / "nowhere")


def test_truncated_and_corrupt_files_are_clear_errors(root):
    x_path = root / "stl10_binary" / "train_X.bin"
    x_path.write_bytes(x_path.read_bytes()[:-100])
    with pytest.raises(ScalarizeError, match="truncated"):
        load_benchmark("cifar10_stl10", view="mdl", root=root)


def test_truncated_cifar_pickle(root):
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ScalarizeError, match="data_batch_3 is truncated"):
        load_benchmark("cifar10_stl10", view="mdl", root=root)


def test_label_out_of_range_and_wrong_image_size(root):
    y_path = root / "stl10_binary" / "test_y.bin"
    np.array([1, 2, 11, 3, 4], dtype=np.uint8).tofile(y_path)
    with pytest.raises(ScalarizeError, match=r"label 11 is out of range 1\.\.10"):
        load_benchmark("cifar10_stl10", view="mdl", root=root)
    path = root / "cifar-10-batches-py" / "test_batch"
    with open(path, "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(ScalarizeError, match="expected N×3072"):
        read_cifar_batch(path)


def test_trains_with_per_domain_heads(root, tmp_path):
    from scalarize.config import load_config
    from scalarize.training import train_run

    config = load_config(None, ["benchmark.name=cifar10_stl10", "benchmark.view=mdl",
                                f"benchmark.options={{root: {root}}}", "model.spec=vit-d1-w16-p8",
                                "train.epochs=1", "train.batch_size=8", "train.device=cpu"])
    summary = train_run(config, tmp_path / "runs", progress=False)
    assert set(summary.test.acc) == {"cifar10", "stl10"}
