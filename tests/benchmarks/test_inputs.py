"""What one example's input is, read from the array: the kinds, the token vocabulary, and the
one-line refusals of what is none of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalarize.benchmarks.inputs import InputSpec, check_tokens, infer_input, same_input
from scalarize.errors import ScalarizeError


@pytest.mark.parametrize(("x", "kind", "shape"), [
    (np.zeros((4, 3, 8, 8), np.uint8), "image", (3, 8, 8)),
    (np.zeros((4, 3, 8, 8), np.float32), "image", (3, 8, 8)),
    (np.zeros((4, 64), np.float64), "tabular", (64,)),
    (np.zeros((4, 12), np.int32), "tokens", (12,)),
    (np.zeros((4, 12, 5), np.float32), "sequence", (12, 5)),
    (torch.zeros(4, 7), "tabular", (7,)),
    (torch.zeros(4, 7, dtype=torch.long), "tokens", (7,)),
])
def test_the_kind_is_read_from_shape_and_dtype(x, kind, shape):
    spec = infer_input(x)
    assert (spec.kind, spec.shape) == (kind, shape)
    assert spec.is_image == (kind == "image")


def test_the_factory_is_given_the_input_its_kind_needs():
    assert InputSpec("image", (3, 8, 8)).factory_kwargs() == {"image_shape": (3, 8, 8)}
    assert InputSpec("tabular", (64,)).factory_kwargs() == {"input_shape": (64,)}
    assert InputSpec("tokens", (9,), 30).factory_kwargs() == {"input_shape": (9,),
                                                              "vocab_size": 30}
    assert InputSpec("tokens", (9,), 30).dummy(2).dtype == torch.int64
    assert InputSpec("sequence", (9, 2)).dummy(2).shape == (2, 9, 2)


def test_the_vocabulary_is_the_largest_id_plus_one_or_the_one_given():
    ids = np.array([[0, 4, 2], [1, 1, 3]])
    assert infer_input(ids).vocab_size == 5
    assert infer_input(ids, vocab_size=10).vocab_size == 10
    with pytest.raises(ScalarizeError, match=r"token id 4, outside the vocabulary 0\.\.3"):
        infer_input(ids, vocab_size=4)
    with pytest.raises(ScalarizeError, match="token id -1; ids go from 0"):
        infer_input(np.array([[0, -1]]))


@pytest.mark.parametrize(("x", "options", "message"), [
    (np.zeros((4,), np.float32), {}, "give N×F features"),
    (np.zeros((4, 3, 8), np.int64), {}, "N×L×F floats"),
    (np.zeros((4, 3, 8, 8), np.int64), {}, "N×C×H×W images"),
    (np.zeros((4, 3, 8, 8, 2), np.float32), {}, "N×F floats"),
    (np.zeros((4, 8), np.float32), {"vocab_size": 5}, "vocab_size=5 is for token inputs"),
    (np.zeros((4, 8), np.int64), {"standardize": True}, "standardize is for float features"),
])
def test_what_is_no_kind_is_refused_in_one_line(x, options, message):
    with pytest.raises(ScalarizeError, match=message) as caught:
        infer_input(x, **options)
    assert "\n" not in str(caught.value)


def test_splits_must_agree_and_unseen_ids_are_refused():
    same_input({"train": InputSpec("tokens", (5,), 9), "test": InputSpec("tokens", (5,), 7)})
    with pytest.raises(ScalarizeError, match="inputs differ between splits"):
        same_input({"train": InputSpec("tabular", (5,)), "test": InputSpec("tabular", (6,))})
    with pytest.raises(ScalarizeError, match="test inputs holds token id 9"):
        check_tokens(np.array([[1, 9]]), 9, "test inputs")
