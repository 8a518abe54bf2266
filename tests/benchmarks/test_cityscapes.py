"""Cityscapes reader (MTAN's 2/7/19-class label folders) on a fixture in the preprocessed .npy
layout, and its smoke comparison's published columns."""

from pathlib import Path

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.fixtures import write_cityscapes
from scalarize.cli import main
from scalarize.errors import ScalarizeError

PRESET = Path(__file__).parents[2] / "configs" / "cityscapes.yaml"


@pytest.fixture()
def root(tmp_path):
    write_cityscapes(tmp_path / "cityscapes")
    return tmp_path / "cityscapes"


def test_reads_seven_classes_and_inverse_depth(root):
    data = load_benchmark("cityscapes", root=root)
    assert [(t.name, t.kind, t.num_classes) for t in data.tasks] == [
        ("segmentation", "segmentation", 7), ("depth", "depth_map", 0)]
    image, targets = data.splits["train"][0]
    assert image.shape == (3, 16, 32) and targets["depth"].shape == (1, 16, 32)
    labels = targets["segmentation"]
    assert labels.dtype == np.int8 and labels.min() == -1 and labels.max() < 7
    assert [c.label for c in data.columns] == ["mIoU", "Pix Acc", "Abs Err", "Rel Err"]


def test_label_folders(root):
    (root / "train" / "label_7").rename(root / "train" / "label")
    (root / "val" / "label_7").rename(root / "val" / "label")
    assert load_benchmark("cityscapes", root=root).tasks[0].num_classes == 7  # plain label/
    with pytest.raises(ScalarizeError, match=r"label_19/0\.npy is missing"):
        load_benchmark("cityscapes", root=root, labels="label_19")
    with pytest.raises(ScalarizeError, match="'label_5' is not one of MTAN's folders"):
        load_benchmark("cityscapes", root=root, labels="label_5")
    with pytest.raises(ScalarizeError, match="no domains"):
        load_benchmark("cityscapes", view="mdl", root=root)


def test_smoke_compare_prints_the_published_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCALARIZE_CACHE", str(tmp_path / "cache"))
    main(["compare", str(PRESET), "--smoke", "--out", str(tmp_path / "compare"), "--quiet",
          "--format", "csv"])
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header[:6] == ["method", "Segmentation mIoU ↑", "Segmentation Pix Acc ↑",
                          "Depth Abs Err ↓", "Depth Rel Err ↓", "Δm%"]
