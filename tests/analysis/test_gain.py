import pytest

from scalarize.analysis import multitask_gain
from scalarize.errors import ScalarizeError


def test_gain_by_hand():
    # (0.9-0.8)/0.8 = +12.5%, (0.4-0.5)/0.5 = -20%, mean = -3.75%
    assert multitask_gain({"a": 0.9, "b": 0.4}, {"a": 0.8, "b": 0.5}) == pytest.approx(-3.75)


def test_lower_is_better_flips_the_sign():
    # error 2.0 vs single 4.0 is a 50% gain
    assert multitask_gain({"e": 2.0}, {"e": 4.0}, {"e": True}) == pytest.approx(50.0)


def test_missing_baseline():
    with pytest.raises(ScalarizeError, match="no single-task baseline"):
        multitask_gain({"a": 1.0}, {})
