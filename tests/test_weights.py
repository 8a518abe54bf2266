import math

import pytest

from scalarize.errors import ScalarizeError
from scalarize.weights import SimplexWeights, parse_weights

NAMES = ["a", "b", "c"]


def test_normalises_to_the_simplex():
    w = parse_weights([1, 1, 2], NAMES)
    assert w.values == (0.25, 0.25, 0.5)
    assert math.isclose(sum(w.values), 1.0)


def test_presets():
    assert parse_weights("uniform", NAMES).values == pytest.approx((1 / 3,) * 3)
    assert parse_weights("onehot:b", NAMES).values == (0.0, 1.0, 0.0)
    assert parse_weights("0.2, 0.3, 0.5", NAMES).values == pytest.approx((0.2, 0.3, 0.5))
    assert parse_weights({"c": 3, "a": 1}, NAMES).values == (0.25, 0.0, 0.75)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([1, 2], "got 2 weights for 3 objectives"),
        ([1, -1, 1], "must be >= 0"),
        ([0, 0, 0], "all weights are zero"),
        ([1, float("nan"), 1], "must be finite"),
        ([1, float("inf"), 1], "must be finite"),
        ("onehot:z", "not an objective"),
        ("lots", "cannot read weights"),
        ({"z": 1}, "unknown objectives"),
    ],
)
def test_bad_weights_are_clear_errors(spec, message):
    with pytest.raises(ScalarizeError, match=message):
        parse_weights(spec, NAMES)


def test_labels():
    assert parse_weights("uniform", NAMES).label() == "uniform"
    assert parse_weights("onehot:c", NAMES).label() == "onehot-c"
    assert parse_weights([1, 3, 0], NAMES).label() == "w0.25-0.75-0"
    assert parse_weights("onehot:a", NAMES).is_single_task
    assert not SimplexWeights(("a", "b"), (1.0, 1.0)).is_single_task


def test_labels_of_many_objectives_stay_short_and_distinct():
    names = [f"attribute_{i}" for i in range(40)]
    a = parse_weights([1.0] * 32 + [0.0] * 8, names).label()
    b = parse_weights([1.0] * 31 + [0.0] * 9, names).label()
    assert a.startswith("w40-") and len(a) <= 20 and a != b
    assert parse_weights([1, 3], ["x", "y"]).label() == "w0.25-0.75"  # few: spelled out
