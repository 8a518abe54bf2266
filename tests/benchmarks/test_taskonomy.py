"""Taskonomy reader against a fixture in the official per-task PNG layout."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.fixtures import TASKONOMY_BUILDINGS, taskonomy_targets, write_taskonomy
from scalarize.errors import ScalarizeError

SIZE = 16  # the fixture's 32×40 views: centre 32×32 square, halved


@pytest.fixture()
def root(tmp_path):
    write_taskonomy(tmp_path)
    return tmp_path


def _load(root, **options):
    options = {"root": root, "split_file": "train_val_test_fixture.csv", "image_size": SIZE,
               **options}
    return load_benchmark("taskonomy", **options)


def test_reads_buildings_tasks_and_known_pixels(root):
    data = _load(root)
    assert data.objectives == ("depth_zbuffer", "normal", "edge_texture", "segment_semantic")
    assert [t.kind for t in data.tasks] == ["depth", "normals", "regression", "segmentation"]
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [8, 4, 4]
    train = data.splits["train"]
    assert train.x.shape == (8, 3, SIZE, SIZE) and train.x.dtype == np.uint8
    view = taskonomy_targets(1, 32, 40)
    square = {k: v[:, 4:36] for k, v in view.items()}
    # segmentation: nearest neighbour of the quadrant classes
    assert np.array_equal(train.labels["segment_semantic"][1], square["segment_semantic"][::2, ::2])
    # depth: the 6×6 invalid corner becomes 3×3 invalid; the rest keeps its value
    depth = train.labels["depth_zbuffer"][1, 0]
    assert depth.dtype == np.uint16 and (depth[:3, :3] == 65535).all()
    assert depth[3, 0] == 1024 and depth[8, 15] == 1536
    # edges: area average of rows r, r+1 (values 100 r + 10)
    assert train.labels["edge_texture"][1, 0, 2, 5] == 450 + 10
    normal = train.labels["normal"][1]
    assert normal.shape == (3, SIZE, SIZE) and normal[0, 0, 0] == 64 and normal[0, 0, -1] == 192
    # rows are the first building's views 0..3, then the second's (same fixture pictures)
    assert not np.array_equal(train.x[1], train.x[0])
    assert np.array_equal(train.x[4:], train.x[:4])


def test_task_subset_edge_occlusion_and_cache_round_trip(root):
    first = _load(root, max_per_building=2)
    assert len(first.splits["train"]) == 4
    cache = root / ".scalarize" / f"taskonomy-allensville-depth_zbuffer-{SIZE}-2.npy"
    assert cache.is_file()
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["count"] == 2 and meta["shape"] == [1, SIZE, SIZE] and meta["dtype"] == "uint16"
    index = (root / ".scalarize" / meta["index"]).read_text().splitlines()
    assert index == [f"depth_zbuffer/allensville/point_{v}_view_0_domain_depth_zbuffer.png"
                     for v in (0, 1)]
    stamp = cache.stat().st_mtime_ns
    again = _load(root, max_per_building=2)
    assert cache.stat().st_mtime_ns == stamp  # read back, not rebuilt
    for split in ("train", "test"):
        assert np.array_equal(first.splits[split].labels["depth_zbuffer"],
                              again.splits[split].labels["depth_zbuffer"])
    # a changed file changes the checksum (names and sizes): the building is decoded again
    png = root / "depth_zbuffer" / "allensville" / "point_0_view_0_domain_depth_zbuffer.png"
    Image.fromarray(np.full((32, 40), 5120, np.uint16)).save(png)
    changed = _load(root, max_per_building=2)
    assert (changed.splits["train"].labels["depth_zbuffer"][0] == 5120).all()
    shutil.rmtree(root / "depth_zbuffer")
    with pytest.raises(ScalarizeError, match=r"depth_zbuffer\.png is missing"):
        _load(root, max_per_building=2)
    data = _load(root, tasks=["edge_occlusion"], buildings=TASKONOMY_BUILDINGS, split_file=None)
    assert data.objectives == ("edge_occlusion",)


def test_omnidata_layout_is_recognised(tmp_path):
    write_taskonomy(tmp_path / "flat")
    for task_dir in (tmp_path / "flat").iterdir():
        if task_dir.is_dir():
            nested = tmp_path / "omni" / task_dir.name / "taskonomy"
            nested.parent.mkdir(parents=True)
            shutil.copytree(task_dir, nested)
    shutil.copy(tmp_path / "flat" / "train_val_test_fixture.csv", tmp_path / "omni")
    flat, omni = _load(tmp_path / "flat"), _load(tmp_path / "omni")
    assert np.array_equal(flat.splits["val"].labels["normal"], omni.splits["val"].labels["normal"])


def test_bad_files_are_clear_errors(root):
    with pytest.raises(ScalarizeError, match="one of the two"):
        _load(root, buildings={"train": ["a"], "val": ["b"], "test": ["c"]})
    with pytest.raises(ScalarizeError, match=r"rgb/nowhere is missing"):
        _load(root, split_file=None, buildings={"train": ["nowhere"], "val": ["coffeen"],
                                                "test": ["collierville"]})
    with pytest.raises(ScalarizeError, match=r"no building in split\(s\) \['val'\]"):
        _load(root, split_file=None, buildings={"train": ["coffeen"], "val": [],
                                                "test": ["coffeen"]})
    (root / "twice.csv").write_text("id,train,val,test\ncoffeen,1,1,0\n")
    with pytest.raises(ScalarizeError, match="coffeen is in train and val"):
        _load(root, split_file="twice.csv")
    (root / "columns.csv").write_text("building,split\ncoffeen,train\n")
    with pytest.raises(ScalarizeError, match="needs the columns id,train,val,test"):
        _load(root, split_file="columns.csv")
    with pytest.raises(ScalarizeError, match="unknown task"):
        _load(root, tasks=["keypoints2d"])


def test_corrupt_and_out_of_range_targets(root):
    seg = root / "segment_semantic" / "coffeen" / "point_2_view_0_domain_segment_semantic.png"
    labels = np.asarray(Image.open(seg)).copy()
    labels[0, 10] = 40  # inside the centre square
    Image.fromarray(labels).save(seg)
    with pytest.raises(ScalarizeError, match=r"class 40 is out of range 0\.\.17"):
        _load(root)
    assert _load(root, segment_classes=41).tasks[3].num_classes == 41
    depth = root / "depth_zbuffer" / "coffeen" / "point_0_view_0_domain_depth_zbuffer.png"
    depth.write_bytes(depth.read_bytes()[:60])
    with pytest.raises(ScalarizeError, match="corrupt or truncated"):
        _load(root, segment_classes=41)
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(depth)
    with pytest.raises(ScalarizeError, match="expected a 16-bit grey PNG, got mode RGB"):
        _load(root, segment_classes=41)


def test_multi_domain_view_is_refused(root):
    with pytest.raises(ScalarizeError, match="has no domains"):
        load_benchmark("taskonomy", view="mdl", root=root,
                       split_file="train_val_test_fixture.csv", image_size=SIZE)
