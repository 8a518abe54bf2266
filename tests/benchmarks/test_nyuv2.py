"""NYUv2 reader on a fixture in the preprocessed .npy layout, and its smoke runs through train,
compare (the published table's columns and Δm%) and report."""

import json
from pathlib import Path

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.fixtures import dense_npy_example, write_nyuv2
from scalarize.cli import main
from scalarize.errors import ScalarizeError

PRESET = Path(__file__).parents[2] / "configs" / "nyuv2.yaml"


@pytest.fixture()
def root(tmp_path):
    write_nyuv2(tmp_path / "nyuv2")
    return tmp_path / "nyuv2"


def test_reads_the_layout_with_missing_pixels_marked(root):
    data = load_benchmark("nyuv2", root=root)
    assert [(t.name, t.kind, t.num_classes) for t in data.tasks] == [
        ("segmentation", "segmentation", 13), ("depth", "depth_map", 0),
        ("normal", "normal_map", 0)]
    assert data.tasks[0].options == {"ignore": -1}
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [12, 6, 6]
    image, targets = data.splits["train"][3]
    written = dense_npy_example(3, 24, 32, 13)
    assert image.dtype == np.float32 and image.shape == (3, 24, 32)
    assert np.array_equal(image, np.moveaxis(written["image"], -1, 0))
    segmentation = targets["segmentation"]
    assert segmentation.dtype == np.int8 and (segmentation[0] == -1).all()
    assert np.array_equal(segmentation[1:], written["label"][1:].astype(np.int8))
    assert targets["depth"].shape == (1, 24, 32) and targets["depth"][0, -1, -1] == 0
    assert targets["normal"].shape == (3, 24, 32) and (targets["normal"][:, -1, 0] == 0).all()
    # the val folder is the test split (and, by default, the validation split)
    test_image, _ = data.splits["test"][0]
    assert np.array_equal(test_image, np.moveaxis(dense_npy_example(1000, 24, 32, 13)["image"],
                                                  -1, 0))


def test_published_columns_follow_the_chosen_tasks(root):
    columns = load_benchmark("nyuv2", root=root).columns
    assert [c.label for c in columns] == ["mIoU", "Pix Acc", "Abs Err", "Rel Err", "Mean",
                                          "Median", "11.25", "22.5", "30"]
    assert [c.higher_is_better for c in columns] == [True, True, False, False, False, False,
                                                     True, True, True]
    subset = load_benchmark("nyuv2", tasks=["depth"], root=root)
    assert [c.label for c in subset.columns] == ["Abs Err", "Rel Err"]


def test_val_share_and_limit(root):
    data = load_benchmark("nyuv2", root=root, val_share=0.25, limit=8, seed=3)
    train, val = data.splits["train"], data.splits["val"]
    assert (len(train), len(val), len(data.splits["test"])) == (6, 2, 6)
    assert not set(train.dataset.indices) & set(val.dataset.indices)
    assert set(train.dataset.indices) | set(val.dataset.indices) == set(range(8))
    again = load_benchmark("nyuv2", root=root, val_share=0.25, limit=8, seed=3)
    assert again.splits["val"].dataset.indices == val.dataset.indices


def test_bad_data_is_one_line(root, tmp_path):
    with pytest.raises(ScalarizeError, match="train/image is missing; put MTAN"):
        load_benchmark("nyuv2", root=tmp_path / "nowhere")
    with pytest.raises(ScalarizeError, match="cannot be downloaded"):
        load_benchmark("nyuv2", root=root, download=True)
    with pytest.raises(ScalarizeError, match="unknown task"):
        load_benchmark("nyuv2", root=root, tasks=["edges"])
    (root / "val" / "normal" / "2.npy").unlink()
    with pytest.raises(ScalarizeError, match=r"val/normal/2\.npy is missing \(1 of 6"):
        load_benchmark("nyuv2", root=root)
    assert load_benchmark("nyuv2", root=root, tasks=["segmentation", "depth"])  # normals unread
    (root / "train" / "depth" / "0.npy").write_bytes(b"\x93NUMPY truncated")
    data = load_benchmark("nyuv2", root=root, tasks=["depth"])
    with pytest.raises(ScalarizeError, match=r"depth/0\.npy is corrupt or truncated"):
        data.splits["train"][0]


def _run_config(root, tmp_path) -> Path:
    config = {"benchmark": {"name": "nyuv2", "options": {"root": str(root)}},
              "model": {"spec": "deeplab10-x0.0625"},
              "train": {"epochs": 1, "batch_size": 4, "device": "cpu", "workers": 0,
                        "threads": 1, "lr": 0.01, "warmup_epochs": 0}}
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(config))
    return path


def test_train_writes_every_published_metric(root, tmp_path):
    out = tmp_path / "runs"
    assert main(["train", str(_run_config(root, tmp_path)), "--out", str(out), "--quiet"]) \
        in (0, None)
    summary = json.loads(next(out.rglob("summary.json")).read_text())
    metrics = summary["test"]["metrics"]
    assert set(metrics["normal"]) >= {"mean_angle", "median_angle", "within_11_25",
                                      "within_22_5", "within_30"}
    assert set(metrics["depth"]) >= {"abs_err", "rel_err"}
    assert 0 <= metrics["segmentation"]["score"] <= metrics["segmentation"]["pixel_acc"] <= 1
    assert summary["test"]["primary"]["normal"] == {"metric": "mean_angle",
                                                    "higher_is_better": False}


def test_smoke_compare_prints_the_published_table_and_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCALARIZE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "compare"
    main(["compare", str(PRESET), "--smoke", "--out", str(out), "--quiet", "--format",
          "csv"])
    printed = capsys.readouterr().out
    header = printed.splitlines()[0].split(",")
    assert header[:11] == ["method", "Segmentation mIoU ↑", "Segmentation Pix Acc ↑",
                           "Depth Abs Err ↓", "Depth Rel Err ↓", "Surface Normal Mean ↓",
                           "Surface Normal Median ↓", "Surface Normal 11.25 ↑",
                           "Surface Normal 22.5 ↑", "Surface Normal 30 ↑", "Δm%"]
    rows = [line.split(",")[0] for line in printed.splitlines()[1:4]]
    assert rows == ["static", "pcgrad", "single-task"]
    assert main(["report", str(out)]) in (0, None)
    markdown = next((out / "report").glob("*.md")).read_text()
    assert "Segmentation mIoU ↑" in markdown and "Δm%" in markdown
