"""CelebA reader against a tiny fixture in the official layout (JPEGs and list files)."""

import numpy as np
import pytest
from PIL import Image

from scalarize.benchmarks import load_benchmark
from scalarize.errors import ScalarizeError

ATTRS = ["5_o_Clock_Shadow", "Bald", "Bangs", "Smiling"]
COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 250, 10), (10, 250, 250),
           (128, 128, 128)]
PARTITION = [0, 0, 0, 1, 2, 2]


def _write(root, values=None):
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(COLOURS))]
    for name, colour in zip(names, COLOURS, strict=True):
        image = np.zeros((218, 178, 3), np.uint8)
        image[:] = colour
        image[:20] = 0  # outside the centre crop: must not show
        Image.fromarray(image).save(root / "img_align_celeba" / name, quality=95)
    rng = np.random.default_rng(0)
    values = values if values is not None else rng.choice([-1, 1], (len(names), len(ATTRS)))
    lines = [str(len(names)), " ".join(ATTRS)]
    lines += [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, values,
                                                                           strict=True)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n} {p}\n" for n, p in zip(names, PARTITION, strict=True)))
    return values


def test_reads_attributes_splits_and_pixels(tmp_path):
    values = _write(tmp_path)
    data = load_benchmark("celeba", root=tmp_path, image_size=16)
    assert data.objectives == tuple(ATTRS)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3, 1, 2]
    assert data.splits["train"].labels["Bald"].tolist() == (values[:3, 1] > 0).astype(int).tolist()
    smiling = (values[4:, 3] > 0).astype(int).tolist()
    assert data.splits["test"].labels["Smiling"].tolist() == smiling
    x = data.splits["val"].x
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.uint8
    assert np.abs(x[0].reshape(3, -1).mean(axis=1) - np.array(COLOURS[3])).max() < 6


def test_decoded_images_are_cached_and_reused(tmp_path):
    _write(tmp_path)
    first = load_benchmark("celeba", root=tmp_path, image_size=16)
    assert (tmp_path / ".scalarize" / "celeba-16.npy").is_file()
    (tmp_path / "img_align_celeba" / "000001.jpg").unlink()  # the cache no longer needs it
    again = load_benchmark("celeba", root=tmp_path, image_size=16)
    assert np.array_equal(first.splits["train"].x, again.splits["train"].x)
    with pytest.raises(ScalarizeError, match=r"000001\.jpg is missing"):
        load_benchmark("celeba", root=tmp_path, image_size=16, cache=False)


def test_groups_and_task_subsets(tmp_path):
    _write(tmp_path)
    data = load_benchmark("celeba", root=tmp_path, tasks=["Smiling", "Bald"], image_size=8)
    assert data.objectives == ("Smiling", "Bald")
    with pytest.raises(ScalarizeError, match="unknown CelebA group"):
        load_benchmark("celeba", root=tmp_path, group="shoes", image_size=8)
    with pytest.raises(ScalarizeError, match="unknown task"):
        load_benchmark("celeba", root=tmp_path, group="hair", image_size=8)  # fixture lacks them


def test_bad_files_are_clear_errors(tmp_path):
    _write(tmp_path, values=np.array([[1, -1, 1, 2]] + [[1, 1, 1, 1]] * 5))
    with pytest.raises(ScalarizeError, match="value 2 is not -1 or 1"):
        load_benchmark("celeba", root=tmp_path, image_size=8)
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text("\n".join(attr.read_text().splitlines()[:4]) + "\n")
    with pytest.raises(ScalarizeError, match="announces 6 images but lists 2"):
        load_benchmark("celeba", root=tmp_path, image_size=8)
    with pytest.raises(ScalarizeError, match=r"list_attr_celeba\.txt is missing"):
        load_benchmark("celeba", root=tmp_path / "elsewhere", image_size=8)


def test_corrupt_jpeg(tmp_path):
    _write(tmp_path)
    path = tmp_path / "img_align_celeba" / "000002.jpg"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ScalarizeError, match=r"000002\.jpg is corrupt or truncated"):
        load_benchmark("celeba", root=tmp_path, image_size=8)


def test_data_prepare_command_builds_the_cache(tmp_path, capsys):
    from scalarize.cli import main

    _write(tmp_path)
    assert main(["data", "prepare", "celeba", "--root", str(tmp_path), "image_size=16"]) == 0
    out = capsys.readouterr().out
    assert "celeba-16.npy" in out and (tmp_path / ".scalarize" / "celeba-16.npy").is_file()
    assert main(["data", "prepare", "celeba", "--root", str(tmp_path / "none")]) == 2  # no root
    assert "is not a folder" in capsys.readouterr().err
