import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.shapes import MTL_TASKS, render
from scalarize.errors import ScalarizeError

SMALL = {"n_train": 64, "n_val": 16, "n_test": 16}


def test_render_is_bit_for_bit_reproducible():
    x1, f1 = render(50, [1, 2, 3])
    x2, f2 = render(50, [1, 2, 3])
    x3, _ = render(50, [1, 2, 4])
    assert x1.dtype == np.uint8 and x1.shape == (50, 3, 32, 32)
    assert np.array_equal(x1, x2)
    assert all(np.array_equal(f1[k], f2[k]) for k in f1)
    assert not np.array_equal(x1, x3)


def test_labels_are_in_range_and_all_classes_occur():
    _, factors = render(2000, 0)
    for task in MTL_TASKS:
        counts = np.bincount(factors[task.name], minlength=task.num_classes)
        assert len(counts) == task.num_classes
        assert counts.min() > 0.5 * 2000 / task.num_classes  # roughly balanced


def test_count_matches_the_number_of_drawn_shapes():
    # flat style: the background is grey, so coloured blobs are the shapes
    x, factors = render(200, 5, style="flat")
    from scipy import ndimage

    for i in range(200):
        saturated = (x[i].max(0).astype(int) - x[i].min(0)) > 60
        _, blobs = ndimage.label(saturated)
        assert blobs == factors["count"][i] + 1


def test_mtl_view_and_cache_round_trip():
    first = load_benchmark("shapes", **SMALL)
    again = load_benchmark("shapes", **SMALL)  # from the cache
    fresh = load_benchmark("shapes", cache=False, **SMALL)
    assert first.objectives == tuple(t.name for t in MTL_TASKS)
    for split in ("train", "val", "test"):
        assert np.array_equal(first.splits[split].x, again.splits[split].x)
        assert np.array_equal(first.splits[split].x, fresh.splits[split].x)
    assert not np.array_equal(first.splits["val"].x, first.splits["test"].x)


def test_growing_train_leaves_val_and_test_unchanged():
    small = load_benchmark("shapes", **SMALL)
    big = load_benchmark("shapes", n_train=128, n_val=16, n_test=16)
    assert np.array_equal(small.splits["test"].x, big.splits["test"].x)


def test_mdl_view_has_imbalanced_domains_with_one_label_space():
    data = load_benchmark("shapes", view="mdl", n_train=[40, 20, 10, 5], n_val=8, n_test=8)
    train = data.splits["train"]
    assert data.objectives == ("flat", "textured", "sketch", "photo")
    assert np.bincount(train.domain).tolist() == [40, 20, 10, 5]
    assert data.tasks[0].num_classes == 12
    assert train.labels["label"].max() < 12
    # the domains really look different: mean brightness differs between flat and sketch
    flat = train.x[train.domain == 0].mean()
    sketch = train.x[train.domain == 2].mean()
    assert sketch - flat > 100


def test_task_subset_and_errors():
    data = load_benchmark("shapes", tasks=["count", "shape"], **SMALL)
    assert data.objectives == ("count", "shape")
    with pytest.raises(ScalarizeError, match="unknown task"):
        load_benchmark("shapes", tasks=["colour", "smell"], **SMALL)
    with pytest.raises(ScalarizeError, match="one size per domain"):
        load_benchmark("shapes", view="mdl", n_train=[10, 10], n_val=4, n_test=4)
    with pytest.raises(ScalarizeError, match="unknown benchmark"):
        load_benchmark("imagenet")


def test_mdl_label_can_be_one_latent_factor_of_the_same_images():
    both = {"view": "mdl", "n_train": [30, 10], "n_val": 8, "n_test": 8,
            "domains": ["flat", "photo"]}
    default = load_benchmark("shapes", **both)
    for factor, classes in [("shape", 4), ("count", 3)]:
        data = load_benchmark("shapes", label=factor, **both)
        assert data.tasks[0].name == "label" and data.tasks[0].num_classes == classes
        for split, base in zip(data.splits.values(), default.splits.values(), strict=True):
            assert np.array_equal(split.x, base.x)  # same images, so the cache entries serve
            combined = base.labels["label"]
            expected = combined // 3 if factor == "shape" else combined % 3
            assert np.array_equal(split.labels["label"], expected)
    with pytest.raises(ValueError, match="unknown label 'smell'"):
        load_benchmark("shapes", label="smell", **both)


def test_few_labels_per_task_masks_training_labels_only():
    opts = {"n_train": 60, "n_val": 12, "n_test": 12}
    full = load_benchmark("shapes", tasks=["count", "balance"], **opts)
    few = load_benchmark("shapes", tasks=["count", "balance"], labels_per_task=10, **opts)
    assert np.array_equal(few.splits["train"].x, full.splits["train"].x)
    for name in ("count", "balance"):
        kept = few.splits["train"].labels[name] >= 0
        assert kept.sum() == 10 and (few.splits["train"].labels[name][~kept] == -1).all()
        assert np.array_equal(few.splits["train"].labels[name][kept],
                              full.splits["train"].labels[name][kept])
        for split in ("val", "test"):  # scored on every image
            assert np.array_equal(few.splits[split].labels[name], full.splits[split].labels[name])
    masks = [few.splits["train"].labels[n] >= 0 for n in ("count", "balance")]
    assert not np.array_equal(*masks)  # each task its own images
    alone = load_benchmark("shapes", tasks=["balance"], labels_per_task=10, **opts)
    assert np.array_equal(alone.splits["train"].labels["balance"] >= 0, masks[1])
    with pytest.raises(ScalarizeError, match="labels_per_task is an option of the mtl view"):
        load_benchmark("shapes", view="mdl", labels_per_task=5, n_train=[5, 5, 5, 5],
                       n_val=4, n_test=4)
