"""StreamSplit: the item contract, subsets, domains, the stats sample, and the Dataset checks."""

import numpy as np
import pytest
import torch

from scalarize.benchmarks import Dataset, Split, StreamSplit, Task, stream_split
from scalarize.benchmarks.stream import collate, read_item, target_array
from scalarize.errors import ScalarizeError


class Items(torch.utils.data.Dataset):
    """``n`` images whose pixels all equal their index (mod 256), label ``i % classes``."""

    def __init__(self, n, shape=(3, 4, 4), classes=2, dtype=np.uint8):
        self.n, self.shape, self.classes, self.dtype = n, shape, classes, dtype

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(self.shape, i % 256, self.dtype), {"y": i % self.classes}


class Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([])

    def __len__(self):
        return 0


def test_targets_become_int64_float32_or_keep_their_array_dtype():
    assert target_array(3).dtype == np.int64
    assert target_array(np.uint8(3)).dtype == np.int64
    assert target_array(torch.tensor(2)).dtype == np.int64
    assert target_array(True).dtype == np.int64
    assert target_array(0.5).dtype == np.float32
    assert target_array(np.float64(0.5)).dtype == np.float32
    dense = np.zeros((4, 4), np.uint8)
    assert target_array(dense).dtype == np.uint8 and target_array(dense).shape == (4, 4)
    assert target_array(torch.zeros(1, 4, 4)).dtype == np.float32
    with pytest.raises(ScalarizeError, match="numbers"):
        target_array("cat")


def test_items_may_be_tensors_and_are_checked():
    image, targets = read_item((torch.ones(1, 2, 2, dtype=torch.uint8), {"a": torch.tensor(1)}))
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert targets["a"].dtype == np.int64
    with pytest.raises(ScalarizeError, match=r"\(image, \{task name: label\}\)"):
        read_item(np.zeros((3, 4, 4)))
    with pytest.raises(ScalarizeError, match="C×H×W"):
        read_item((np.zeros((4, 4), np.uint8), {"a": 0}))
    with pytest.raises(ScalarizeError, match="dtype int32"):
        read_item((np.zeros((3, 4, 4), np.int32), {"a": 0}))


def test_collate_stacks_and_keeps_uint8():
    x, labels = collate([Items(4)[i] for i in range(4)])
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 4, 4)
    assert x[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert labels["y"].dtype == torch.int64 and labels["y"].tolist() == [0, 1, 0, 1]
    with pytest.raises(ScalarizeError, match="one shape and dtype"):
        collate([Items(1)[0], Items(1, shape=(3, 5, 5))[0]])
    with pytest.raises(ScalarizeError, match="same tasks"):
        collate([Items(1)[0], (np.zeros((3, 4, 4), np.uint8), {"z": 1})])


def test_subset_image_shape_and_domains():
    split = stream_split([Items(5), Items(3), Items(2)])
    assert len(split) == 10 and split.image_shape == (3, 4, 4)
    assert split.domain.tolist() == [0] * 5 + [1] * 3 + [2] * 2
    part = split.subset(np.array([9, 0, 6]))
    assert len(part) == 3 and part.domain.tolist() == [2, 0, 1]
    assert [int(part[i][0][0, 0, 0]) for i in range(3)] == [1, 0, 1]  # items 9, 0, 6
    assert part.subset(np.array([2])).domain.tolist() == [1]


def test_split_domain_and_dataset_are_validated():
    with pytest.raises(ScalarizeError, match="3 non-negative integers"):
        StreamSplit(Items(3), np.array([0, 1]))
    with pytest.raises(ScalarizeError, match="non-negative"):
        StreamSplit(Items(2), np.array([0, -1]))
    with pytest.raises(ScalarizeError, match="map-style"):
        StreamSplit(Stream())


def test_the_stats_sample_is_every_item_up_to_512_else_a_seeded_512():
    assert StreamSplit(Items(10)).sample()[:, 0, 0, 0].tolist() == list(range(10))
    big = StreamSplit(Items(2000, shape=(1, 1, 1), classes=1))
    a, b = big.sample(), big.sample()
    assert a.shape == (512, 1, 1, 1) and np.array_equal(a, b)
    assert not np.array_equal(a, big.sample(seed=1))


def test_in_memory_split_knows_its_image_shape_too():
    split = Split(x=np.zeros((2, 1, 5, 7), np.uint8), labels={"y": np.zeros(2, np.int64)})
    assert split.image_shape == (1, 5, 7)


def _dataset(train, view="mdl", domains=("a", "b")):
    test = StreamSplit(Items(4), np.zeros(4, np.int64))
    return Dataset("toy", view, (Task("y", 2),), {"train": train, "val": test, "test": test},
                   domains)


def test_dataset_checks_hold_for_streamed_splits():
    data = _dataset(stream_split([Items(6), Items(2)]))
    assert data.image_shape == (3, 4, 4)
    assert data.summary()["train_per_domain"] == {"a": 6, "b": 2}
    with pytest.raises(ScalarizeError, match=r"domain\(s\) \['b'\] have no training"):
        _dataset(stream_split([Items(6)]))
    with pytest.raises(ScalarizeError, match="no training examples"):
        _dataset(StreamSplit(Items(0)), view="mtl", domains=())
