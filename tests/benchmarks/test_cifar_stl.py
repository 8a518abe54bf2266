"""CIFAR-10 + STL-10 readers against tiny fixtures written in the official formats."""

import io
import pickle
import pickletools
import struct
import sys
from typing import ClassVar

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.cifar_stl import (
    SHARED_CLASSES,
    CifarUnpickler,
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


class _Python2Pickler(pickle._Pickler):
    """Pickles as python 2's cPickle wrote the official ``cifar-10-batches-py`` files:
    protocol 2, every string a python-2 ``str`` (BINSTRING), numpy's ``_reconstruct`` under
    its numpy-1 module ``numpy.core.multiarray``."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def _save_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_str
    dispatch[str] = _save_str

    def save_global(self, obj, name=None):
        module = ("numpy.core.multiarray" if obj.__name__ == "_reconstruct"
                  else obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{obj.__name__}\n".encode())
        self.memoize(obj)


def _dump_python2(batch, handle):
    _Python2Pickler(handle, protocol=2).dump(batch)


def _globals(data: bytes) -> set[str]:
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data)
            if op.name == "GLOBAL"}


def _write_cifar(root, n=PER_BATCH):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, offset in [*[(f"data_batch_{b}", b * 100) for b in range(1, 6)],
                         ("test_batch", 900)]:
        images = _cifar_images(n, offset)
        batch = {b"batch_label": name.encode(), b"labels": [(offset + j) % 10 for j in range(n)],
                 b"data": images.reshape(n, -1),
                 b"filenames": [f"img_{offset + j}.png".encode() for j in range(n)]}
        with open(folder / name, "wb") as handle:
            _dump_python2(batch, handle)


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
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle,
                    protocol=3)
    with pytest.raises(ScalarizeError, match="expected N×3072"):
        read_cifar_batch(path)


def test_trains_with_per_domain_heads(root, tmp_path):
    from scalarize.config import load_config
    from scalarize.launch import train_run

    config = load_config(None, ["benchmark.name=cifar10_stl10", "benchmark.view=mdl",
                                f"benchmark.options={{root: {root}}}", "model.spec=vit-d1-w16-p8",
                                "train.epochs=1", "train.batch_size=8", "train.device=cpu"])
    summary = train_run(config, tmp_path / "runs", progress=False)
    assert set(summary.test.acc) == {"cifar10", "stl10"}


# -- the restricted unpickler ---------------------------------------------------------------------
def test_batches_are_written_as_the_official_python2_files(root):
    data = (root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert data.startswith(b"\x80\x02}q\x00(U\x0bbatch_label")  # protocol 2, a py2 str key
    assert _globals(data) == {"numpy.core.multiarray._reconstruct", "numpy.ndarray",
                              "numpy.dtype"}


@pytest.mark.parametrize("protocol", [3, 4])
def test_a_batch_pickled_by_python3_numpy2_loads_too(tmp_path, protocol):
    """``numpy._core.multiarray._reconstruct``, as numpy 2 names it (the fixture writer's)."""
    images = _cifar_images(2, 0).reshape(2, -1)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": images, b"labels": [3, 4]}, protocol=protocol))
    x, y = read_cifar_batch(path)
    assert np.array_equal(x.reshape(2, -1), images) and y.tolist() == [3, 4]


def test_the_benchmark_fixture_holds_only_the_official_globals(tmp_path):
    from scalarize.benchmarks.fixtures import write_fixture

    options = write_fixture("cifar10_stl10", tmp_path)
    data = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    assert _globals(data) | {g for op, g, _ in pickletools.genops(data)
                             if op.name == "STACK_GLOBAL"} <= {
        "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"}
    assert load_benchmark("cifar10_stl10", view="mdl", **options).domains == ("cifar10",
                                                                              "stl10")


@pytest.mark.parametrize(("module", "name"), [("os", "system"), ("builtins", "eval"),
                                              ("numpy", "load"), ("posix", "system"),
                                              ("numpy.core.multiarray", "scalar")])
def test_any_other_global_is_refused_in_one_line(tmp_path, module, name):
    path = tmp_path / "data_batch_1"
    # {b"data": module.name("x")}: a call of the global, made only if it is resolved
    path.write_bytes(b"\x80\x02}U\x04datac" + f"{module}\n{name}\n".encode()
                     + b"U\x01x\x85R" + b"s.")
    with pytest.raises(ScalarizeError) as refused:
        read_cifar_batch(path)
    message = str(refused.value)
    assert message.startswith(f"{path} asks for {module}.{name}, which no CIFAR-10")
    assert "\n" not in message and "download the batch again" in message


def test_a_refused_module_is_never_imported(tmp_path):
    module = "scalarize_cifar_test_never_imported"
    (tmp_path / f"{module}.py").write_text("raise SystemExit('imported')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        path = tmp_path / "test_batch"
        path.write_bytes(b"\x80\x02c" + f"{module}\nrun\n".encode() + b")R.")
        with pytest.raises(ScalarizeError, match=f"asks for {module}.run"):
            read_cifar_batch(path)
    finally:
        sys.path.remove(str(tmp_path))
    assert module not in sys.modules


def test_protocol_5_arrays_are_not_what_the_official_files_hold(tmp_path):
    """numpy pickles an array at protocol 5 through ``_frombuffer``: not in the allowed set."""
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]},
                                  protocol=5))
    with pytest.raises(ScalarizeError, match=r"asks for numpy\._core\.numeric\._frombuffer"):
        read_cifar_batch(path)


def test_persistent_ids_are_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02U\x01xQ.")  # BINPERSID
    with pytest.raises(ScalarizeError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(path)


def test_the_unpickler_reads_bytes_keys_like_pickle_with_encoding_bytes(root):
    data = (root / "cifar-10-batches-py" / "test_batch").read_bytes()
    ours = CifarUnpickler(io.BytesIO(data)).load()
    theirs = pickle.loads(data, encoding="bytes")
    assert list(ours) == list(theirs) == [b"batch_label", b"labels", b"data", b"filenames"]
    assert np.array_equal(ours[b"data"], theirs[b"data"])
    assert ours[b"filenames"] == theirs[b"filenames"]
