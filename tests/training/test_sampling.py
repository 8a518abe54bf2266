import numpy as np
import torch

from scalarize.training.sampling import DomainMixtureSampler, ShuffledSampler


def test_shuffled_covers_every_example_once_per_epoch():
    sampler = ShuffledSampler(10, 4, seed=0)
    batches = list(sampler.iter_epoch(0))
    assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert torch.equal(torch.cat(batches), torch.cat(list(sampler.iter_epoch(0))))
    assert not torch.equal(torch.cat(batches), torch.cat(list(sampler.iter_epoch(1))))


def test_mixture_follows_the_weights_on_imbalanced_domains():
    domain = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = DomainMixtureSampler(domain, np.array([0.2, 0.3, 0.5]), batch_size=50, seed=1)
    assert sum(len(b) for b in sampler.iter_epoch(0)) == 1000
    drawn = torch.cat([b for e in range(5) for b in sampler.iter_epoch(e)]).numpy()
    shares = np.bincount(domain[drawn], minlength=3) / len(drawn)
    assert np.allclose(shares, [0.2, 0.3, 0.5], atol=0.03)  # 4 standard deviations
    # within an epoch the 10-image domain is cycled through evenly (each image ~50 times)
    first = torch.cat(list(sampler.iter_epoch(0))).numpy()
    small = np.bincount(first[domain[first] == 2] - 990, minlength=10)
    assert small.min() >= small.max() - 1


def test_zero_weight_domain_is_never_drawn_and_weights_can_change():
    domain = np.array([0] * 50 + [1] * 50)
    sampler = DomainMixtureSampler(domain, np.array([1.0, 0.0]), batch_size=10, seed=0)
    it = sampler.iter_epoch(0)
    assert (domain[next(it).numpy()] == 0).all()
    sampler.set_weights(np.array([0.0, 1.0]))
    assert (domain[next(it).numpy()] == 1).all()


def test_mixture_epochs_are_reproducible():
    domain = np.arange(100) % 3
    a = DomainMixtureSampler(domain, np.ones(3) / 3, 16, seed=4)
    b = DomainMixtureSampler(domain, np.ones(3) / 3, 16, seed=4)
    assert torch.equal(torch.cat(list(a.iter_epoch(2))), torch.cat(list(b.iter_epoch(2))))
