"""What one example's input is: images, or tabular, token or float-sequence data.

The kind is read from the array of a whole split (N first), by its shape and dtype:

============================ ============ ============================================
``x``                        kind         what the model factory is given
============================ ============ ============================================
N×C×H×W (uint8, or float)    ``image``    ``image_shape=(C, H, W)``
N×F floats                   ``tabular``  ``input_shape=(F,)``
N×L integers                 ``tokens``   ``input_shape=(L,)``, ``vocab_size=V``
N×L×F floats                 ``sequence`` ``input_shape=(L, F)``
============================ ============ ============================================

Images go through the image steps (channel statistics, augmentation, feature maps for dense
heads); the other kinds skip them. Float features are taken as they are, or standardised per
feature with the training split's mean and standard deviation when the data asks for it
(``standardize``). Token ids are integers in ``0..vocab_size-1``; the vocabulary is the
training split's largest id + 1 unless given.

Example:
    >>> import numpy as np
    >>> infer_input(np.zeros((5, 64), np.float32))
    InputSpec(kind='tabular', shape=(64,), vocab_size=None, standardize=False)
    >>> infer_input(np.array([[1, 2, 3], [4, 0, 0]])).describe()
    'tokens (length 3, vocabulary 5)'
    >>> infer_input(np.zeros((5, 3, 8, 8), np.uint8)).is_image
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from scalarize.errors import ScalarizeError

InputKind = Literal["image", "tabular", "tokens", "sequence"]
INPUT_KINDS: tuple[InputKind, ...] = ("image", "tabular", "tokens", "sequence")


@dataclass(frozen=True)
class InputSpec:
    """One example's input: its ``kind``, its ``shape`` (without N), the vocabulary of token
    inputs, and whether float features are standardised with training statistics."""

    kind: InputKind
    shape: tuple[int, ...]
    vocab_size: int | None = None
    standardize: bool = False

    @property
    def is_image(self) -> bool:
        """Whether the image steps (channel statistics, augmentation, dense heads) apply."""
        return self.kind == "image"

    def factory_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a model factory is called with for this input."""
        if self.is_image:
            return {"image_shape": self.shape}
        extra = {"vocab_size": self.vocab_size} if self.kind == "tokens" else {}
        return {"input_shape": self.shape, **extra}

    def dummy(self, n: int, device: Any = None) -> torch.Tensor:
        """A batch of ``n`` zero inputs (int64 ids for tokens), to check a model on."""
        dtype = torch.int64 if self.kind == "tokens" else torch.float32
        return torch.zeros(n, *self.shape, dtype=dtype, device=device)

    def describe(self) -> str:
        """One short phrase for messages, e.g. ``tabular (64 features)``."""
        if self.kind == "image":
            return "images {}×{}×{}".format(*self.shape)
        if self.kind == "tabular":
            return f"tabular ({self.shape[0]} features)"
        if self.kind == "tokens":
            return f"tokens (length {self.shape[0]}, vocabulary {self.vocab_size})"
        return f"sequences (length {self.shape[0]}, {self.shape[1]} features)"

    def record(self) -> dict[str, Any]:
        """A JSON-able record of this input (what a run keeps to read new inputs alike)."""
        return {"kind": self.kind, "shape": list(self.shape), "vocab_size": self.vocab_size,
                "standardize": self.standardize}


def infer_input(x: Any, *, vocab_size: int | None = None, standardize: bool = False,
                where: str = "x") -> InputSpec:
    """The :class:`InputSpec` of the array ``x`` (N first) by its shape and dtype (see the
    module doc); one line saying what is wrong for anything else. For tokens the vocabulary
    is ``vocab_size`` when given, else the largest id + 1."""
    shape = tuple(int(d) for d in getattr(x, "shape", ()))
    if isinstance(x, torch.Tensor):
        floating, byte = x.is_floating_point(), x.dtype == torch.uint8
        integer = not floating and not x.is_complex() and x.dtype != torch.bool
    else:
        dtype = np.dtype(getattr(x, "dtype", np.float64))
        floating, integer, byte = dtype.kind == "f", dtype.kind in "iu", dtype == np.uint8
    if len(shape) < 2 or min(shape[1:], default=1) < 1:
        raise ScalarizeError(f"{where} has shape {shape}; give N×F features, N×L token ids, "
                             "N×L×F sequences or N×C×H×W images")
    rank = len(shape)
    if rank == 4 and (floating or byte):
        kind: InputKind = "image"
    elif rank == 2 and floating:
        kind = "tabular"
    elif rank == 2 and integer:
        kind = "tokens"
    elif rank == 3 and floating:
        kind = "sequence"
    else:
        raise ScalarizeError(
            f"{where} has shape {shape} and dtype {getattr(x, 'dtype', '?')}; give N×F floats "
            "(tabular), N×L integers (tokens), N×L×F floats (sequences) or N×C×H×W images "
            "(uint8 or float)")
    if kind == "tokens":
        vocab_size = token_vocab(x, vocab_size, where)
    elif vocab_size is not None:
        raise ScalarizeError(f"vocab_size={vocab_size} is for token inputs (N×L integers); "
                             f"{where} holds {kind} data, so leave it out")
    if standardize and kind in ("image", "tokens"):
        raise ScalarizeError(f"standardize is for float features; {where} holds {kind}, "
                             "so leave it off")
    return InputSpec(kind, shape[1:], vocab_size, standardize)


def token_vocab(x: Any, vocab_size: int | None, where: str = "x") -> int:
    """The vocabulary of token ids ``x``: ``vocab_size`` when given (every id checked below
    it), else the largest id + 1; a negative id is refused."""
    ids = np.asarray(x)
    low = int(ids.min()) if ids.size else 0
    high = int(ids.max()) if ids.size else 0
    if low < 0:
        raise ScalarizeError(f"{where} holds token id {low}; ids go from 0 (pad unused "
                             "positions with an id of your own, e.g. 0)")
    if vocab_size is None:
        return high + 1
    if vocab_size < 1:
        raise ScalarizeError(f"vocab_size={vocab_size}; give at least 1")
    check_tokens(ids, vocab_size, where, given=True)
    return int(vocab_size)


def check_tokens(x: Any, vocab_size: int, where: str, given: bool = False) -> None:
    """Refuse, in one line, a token id outside ``0..vocab_size-1`` (val or test ids that the
    training vocabulary does not hold, or any id at or above a ``given`` vocabulary)."""
    ids = np.asarray(x)
    if ids.size == 0:
        return
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.size:
        source = ("vocab_size; give a larger one" if given else "the training split; map "
                  "unseen ids to one id of your own, or give vocab_size")
        raise ScalarizeError(f"{where} holds token id {int(bad[0])}, outside the vocabulary "
                             f"0..{vocab_size - 1} (from {source})")


def same_input(specs: dict[str, InputSpec]) -> None:
    """Refuse splits whose inputs differ in kind or shape (their vocabularies may differ)."""
    seen = {name: (s.kind, s.shape) for name, s in specs.items()}
    if len(set(seen.values())) > 1:
        shown = {name: f"{kind} {shape}" for name, (kind, shape) in seen.items()}
        raise ScalarizeError(f"inputs differ between splits: {shown}; give every split the "
                             "same kind and shape")


__all__ = ["INPUT_KINDS", "InputKind", "InputSpec", "check_tokens", "infer_input",
           "same_input", "token_vocab"]
