"""The data-parallel step's parts that need no second process: each process's slice of the
sampler's batches, the global losses' values and gradients, and the refusals."""

import numpy as np
import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.methods import build_method
from scalarize.methods.shard import Shard
from scalarize.training.parallel import (
    check_distributes,
    global_losses,
    shard_batches,
    sum_gradients,
)
from scalarize.training.sampling import DomainMixtureSampler, ShuffledSampler
from tests.conftest import tiny_config


def _slices(batches, world):
    return [[index for index, _ in shard_batches(batches, Shard(r, world))]
            for r in range(world)]


def test_the_slices_of_each_global_batch_are_that_batch_in_order():
    batches = list(ShuffledSampler(10, 4, seed=0).iter_epoch(0))  # 4, 4 and a last batch of 2
    for world in (2, 3):
        slices = _slices(batches, world)
        for step, batch in enumerate(batches):
            assert torch.equal(torch.cat([slices[r][step] for r in range(world)]), batch)


def test_mdl_slices_keep_the_weights_domain_proportions():
    domain = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = DomainMixtureSampler(domain, np.array([0.2, 0.3, 0.5]), batch_size=50, seed=1)
    batches = [b for e in range(3) for b in sampler.iter_epoch(e)]
    slices = _slices(batches, 2)
    drawn = np.concatenate([s.numpy() for rank in slices for s in rank])
    shares = np.bincount(domain[drawn], minlength=3) / len(drawn)
    one = np.bincount(domain[torch.cat(batches).numpy()], minlength=3) / len(drawn)
    assert np.array_equal(shares, one)  # the same examples as one process, so the same mix
    assert np.allclose(shares, [0.2, 0.3, 0.5], atol=0.03)


def test_one_process_global_losses_are_its_own_with_its_gradient():
    losses = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    counts = torch.tensor([3.0, 1.0, 0.0])
    value, global_counts = global_losses(losses, counts, Shard(0, 1))
    assert torch.allclose(value, losses) and torch.equal(global_counts, counts)
    value.sum().backward()
    assert torch.equal(losses.grad, torch.tensor([1.0, 1.0, 0.0]))  # count / global count


def test_a_parameter_without_gradient_keeps_none():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    a.grad = torch.full((2,), 0.5)
    sum_gradients([a, b], Shard(0, 1))
    assert torch.equal(a.grad, torch.full((2,), 0.5)) and b.grad is None


def test_a_method_that_does_not_distribute_is_refused_in_one_line():
    config = tiny_config("method.name=mgda_ub")
    with pytest.raises(ScalarizeError, match=r"^method 'mgda_ub' cannot train on 2 processes "
                       r"\(its weights come from the gradients of the shared features") as err:
        check_distributes(config, build_method("mgda_ub", {}, 2), 2)
    assert "\n" not in str(err.value)
    check_distributes(tiny_config(), build_method("static", {}, 2), 2)  # static does


def test_a_batch_that_does_not_divide_is_refused_and_probes_are_not():
    static = build_method("static", {}, 2)
    with pytest.raises(ScalarizeError, match=r"train\.batch_size=32 does not divide among 3"):
        check_distributes(tiny_config(), static, 3)
    # the conflict probe measures on the global batch (tests/launch/test_distributed.py)
    check_distributes(tiny_config("probes={conflicts: {every: 1}}"), static, 2)
