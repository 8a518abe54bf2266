import itertools

from scalarize.methods.shard import Shard


def test_the_spans_tile_the_global_batch():
    for size in range(0, 9):
        for world in (1, 2, 3):
            spans = [Shard(r, world, size).span() for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == size
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
            assert max(b - a for a, b in spans) - min(b - a for a, b in spans) <= 1


def test_keep_counts_a_global_value_once():
    import torch

    value = torch.ones(3)
    assert torch.equal(Shard(0, 2).keep(value), value)
    assert torch.equal(Shard(1, 2).keep(value), torch.zeros(3))
