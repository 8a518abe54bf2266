"""Batches of every input kind: images normalised by channel statistics as before, float
features standardised with the training split's statistics (or taken as they are), token ids
left as ids; in memory and streamed alike."""

from __future__ import annotations

import numpy as np
import torch

from scalarize.benchmarks.base import Split
from scalarize.benchmarks.stream import StreamSplit
from scalarize.training.data import (
    LoaderSplit,
    Normalise,
    TensorSplit,
    feature_stats,
    input_stats,
    split_stats,
)

CPU = torch.device("cpu")


def _split(x: np.ndarray) -> Split:
    return Split(x, {"a": np.zeros(len(x), np.int64)})


def test_images_are_normalised_as_before():
    x = np.random.default_rng(0).integers(0, 256, (6, 3, 4, 4), dtype=np.uint8)
    mean, std = split_stats(_split(x))
    batch = TensorSplit(_split(x), CPU, mean, std).batch(torch.arange(6)).x
    expected = (torch.from_numpy(x).float() / 255 - torch.from_numpy(mean).view(1, 3, 1, 1)) \
        / torch.from_numpy(std).view(1, 3, 1, 1)
    torch.testing.assert_close(batch, expected)


def test_features_are_standardised_with_training_statistics_only():
    rng = np.random.default_rng(1)
    train = (rng.standard_normal((50, 4)) * [1, 10, 100, 0] + [0, 5, -3, 7]).astype(np.float32)
    other = rng.standard_normal((9, 4)).astype(np.float32) * 1000
    mean, std = input_stats(_split(train), "tabular", standardize=True)
    assert mean is not None and std is not None
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-5, atol=1e-5)
    assert std[3] == 1.0  # a constant feature is only centred
    served = TensorSplit(_split(train), CPU, mean, std, kind="tabular")
    standardised = served.batch(torch.arange(50)).x.numpy()
    np.testing.assert_allclose(standardised[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(standardised[:, :3].std(0), 1, atol=1e-4)
    test = TensorSplit(_split(other), CPU, mean, std, kind="tabular").batch(torch.arange(9)).x
    np.testing.assert_allclose(test.numpy(), (other - mean) / std, rtol=1e-5, atol=1e-4)


def test_features_are_taken_as_they_are_unless_asked():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) * 50
    assert input_stats(_split(x), "tabular") == (None, None)
    served = TensorSplit(_split(x), CPU, None, None, kind="tabular")
    assert torch.equal(served.batch(torch.arange(3)).x, torch.from_numpy(x))


def test_sequence_statistics_are_per_feature_over_positions():
    x = np.random.default_rng(2).standard_normal((20, 5, 3)).astype(np.float32)
    x += np.array([1, 2, 3], np.float32)
    mean, std = feature_stats(x)
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(0), rtol=1e-5)
    out = Normalise("sequence", mean, std, CPU)(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy().reshape(-1, 3).mean(0), 0, atol=1e-5)


def test_token_ids_stay_ids_in_memory_and_streamed():
    ids = np.random.default_rng(3).integers(0, 9, (8, 6))
    batch = TensorSplit(_split(ids), CPU, None, None, kind="tokens").batch(torch.arange(8)).x
    assert batch.dtype == torch.int64 and torch.equal(batch, torch.from_numpy(ids))

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return ids[i], {"a": 0}

    loader = LoaderSplit(StreamSplit(Rows()), CPU, None, None, kind="tokens")
    streamed = torch.cat([b.x for b in loader.sequential(3)])
    assert torch.equal(streamed, torch.from_numpy(ids))
