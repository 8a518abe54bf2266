"""The shapes MTL view's 40 CelebA-like attributes and the twelve-style MDL view."""

import numpy as np
import pytest

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.shapes import BASE_DOMAINS, DOMAINS, render
from scalarize.benchmarks.shapes_attributes import ATTRIBUTES, PURE_NOISE, attribute_labels
from scalarize.errors import ScalarizeError

SIZES = {"n_train": 3000, "n_val": 64, "n_test": 64, "image_size": 16}


@pytest.fixture(scope="module")
def many():
    return load_benchmark("shapes", attributes=True, **SIZES)


def test_forty_binary_attributes_with_a_spread_of_base_rates(many):
    assert len(many.tasks) == 40 and {t.num_classes for t in many.tasks} == {2}
    rates = {k: v.mean() for k, v in many.splits["train"].labels.items()}
    assert min(rates.values()) < 0.025 and 0.5 < max(rates.values()) < 0.6
    assert sum(r < 0.1 for r in rates.values()) >= 8  # rare attributes, as in CelebA


def test_pure_noise_is_planted_and_independent_of_the_image(many):
    assert many.info["pure_noise"] == list(PURE_NOISE) and len(PURE_NOISE) == 8
    labels = many.splits["train"].labels
    x = many.splits["train"].x.reshape(3000, -1).astype(float).mean(1)
    for name in PURE_NOISE:
        rate = next(a.base_rate for a in ATTRIBUTES if a.name == name)
        assert abs(labels[name].mean() - rate) < 0.03
        # no pixel statistic and no factor predicts it
        assert abs(np.corrcoef(labels[name], x)[0, 1]) < 0.08
        assert abs(np.corrcoef(labels[name], labels["circle"])[0, 1]) < 0.08


def test_noisy_and_near_duplicate_attributes_disagree_as_planted(many):
    labels = many.splits["train"].labels
    assert 0.28 < (labels["noisy_triangle"] != labels["triangle"]).mean() < 0.38
    assert 0.2 < (labels["noisy_warm"] != labels["warm"]).mean() < 0.3
    assert 0.01 < (labels["reddish"] != labels["red"]).mean() < 0.05
    assert 0.01 < (labels["busy"] != labels["crowded"]).mean() < 0.05


def test_attributes_follow_the_factors_and_the_seed():
    _, factors = render(500, [3, 0, 0], 16)
    labels = attribute_labels(factors, seed=3, split_id=0)
    assert np.array_equal(labels["red_circle"],
                          ((factors["shape"] == 0) & (factors["colour"] == 0)).astype(int))
    occupied = np.array([bin(m).count("1") for m in factors["cells"]])
    assert np.array_equal(occupied, factors["count"] + 1)  # the cells are the drawn shapes
    again = attribute_labels(factors, seed=3, split_id=0)
    other = attribute_labels(factors, seed=4, split_id=0)
    assert all(np.array_equal(labels[k], again[k]) for k in labels)
    assert not np.array_equal(labels["noise5"], other["noise5"])


def test_a_subset_keeps_its_labels_and_names_its_noise():
    subset = load_benchmark("shapes", attributes=True, tasks=["circle", "noise3"], **SIZES)
    full = load_benchmark("shapes", attributes=True, **SIZES)
    assert subset.objectives == ("circle", "noise3")
    assert subset.info["pure_noise"] == ["noise3"]
    assert np.array_equal(subset.splits["val"].labels["noise3"],
                          full.splits["val"].labels["noise3"])
    with pytest.raises(ScalarizeError, match="mtl view"):
        load_benchmark("shapes", view="mdl", attributes=True, n_val=4, n_test=4, n_train=4)


def test_twelve_styles_and_an_imbalanced_many_domain_view():
    sizes = [300, 200, 120, 80, 50, 30, 20, 15, 10, 8]
    data = load_benchmark("shapes", view="mdl", domains=list(DOMAINS[:10]), n_train=sizes,
                          n_val=8, n_test=8, image_size=16)
    assert len(DOMAINS) == 12 and data.objectives == DOMAINS[:10]
    assert np.bincount(data.splits["train"].domain).tolist() == sizes
    looks = {style: render(64, 0, 16, style)[0].astype(float) for style in DOMAINS}
    # the styles look different: no two share their brightness and contrast
    assert len({(round(x.mean()), round(x.std())) for x in looks.values()}) == len(DOMAINS)
    default = load_benchmark("shapes", view="mdl", n_train=4, n_val=4, n_test=4)
    assert default.domains == BASE_DOMAINS  # the default stays the four base styles
