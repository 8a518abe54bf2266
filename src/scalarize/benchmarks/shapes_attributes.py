"""The 40 binary attributes of the ``shapes`` MTL view (``attributes: true``), in the style of
CelebA's, with a *planted* answer.

Each attribute is a yes/no question about a rendered scene, derived from the generative
factors (shape, colour, size, count, balance, the occupied cells of the 3×3 grid) and their
combinations, so that, as in CelebA, the attributes spread over difficulty and base rate (about
1.4% to 56% positives), some carry heavy label noise (a quarter to a third of the labels
flipped) and some are near-duplicates of others (a few percent of labels flipped).

The planted answer: eight attributes (``noise0`` … ``noise7``) are *pure noise*, labels drawn
independently of the image, half of them positive. Every predictor scores 50% on them in
expectation (a base rate other than one half would reward learning the prior, so that a zero
weight, which leaves the head untrained, would not be best), so their best scalarization weight
is zero: fitting them only spends shared capacity on memorising the training labels. On the
design seeds (run seeds 1–3, data seed 0, ``configs/many/mtl40.yaml``), zero weight on them
(uniform on the rest) beat uniform weights by 0.19 to 0.25 points of average test accuracy.
A weight search can then be scored on whether it *finds* that (how much weight it leaves on
them), not only on accuracy.

Flips and pure-noise labels have their own seeded streams (one per split and attribute), apart
from the rendering's, so the same images get the same labels whichever attributes are chosen.

Example:
    >>> factors = {"shape": np.array([0, 1]), "colour": np.array([0, 2]),
    ...            "size": np.array([2, 0]), "count": np.array([0, 2]),
    ...            "balance": np.array([1, 0]), "cells": np.array([16, 7])}
    >>> labels = attribute_labels(factors, seed=0, split_id=0)
    >>> labels["circle"].tolist(), labels["red_circle"].tolist(), len(labels)
    ([1, 0], [1, 0], 40)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scalarize.benchmarks.base import Task

# The random streams of flips and pure-noise labels: [seed, split, 11, attribute]. NumPy pads a
# shorter seed with zeros, so the MDL rendering stream of style 10 ([seed, split, 11]) is the
# stream of attribute 0 ("circle"), which draws nothing; changing this number would change
# every noisy label of the many-objective study's data, so it stays.
ATTRIBUTE_STREAM = 11
Factors = dict[str, np.ndarray]


@dataclass(frozen=True)
class Attribute:
    """One binary attribute: what it asks, its rule on the factors (``None``: pure noise,
    positive at ``base_rate`` independently of the image) and the share of labels flipped."""

    name: str
    description: str
    rule: Callable[[Factors], np.ndarray] | None
    flip: float = 0.0
    base_rate: float = 0.0  # pure noise only

    @property
    def pure_noise(self) -> bool:
        """Whether the labels ignore the image (the planted zero-weight attributes)."""
        return self.rule is None


def _cell(mask: np.ndarray, index: int) -> np.ndarray:
    return (mask >> index) & 1 == 1


def _row(mask: np.ndarray, row: int) -> np.ndarray:
    return (mask >> (3 * row)) & 0b111 != 0


def _is(factor: str, value: int) -> Callable[[Factors], np.ndarray]:
    return lambda f: f[factor] == value


def _warm(f: Factors) -> np.ndarray:
    return np.isin(f["colour"], (0, 3, 4))  # red, yellow, magenta


ATTRIBUTES: tuple[Attribute, ...] = (
    # one factor value: base rates 17% to 33%
    Attribute("circle", "the shapes are circles", _is("shape", 0)),
    Attribute("square", "the shapes are squares", _is("shape", 1)),
    Attribute("triangle", "the shapes are triangles", _is("shape", 2)),
    Attribute("cross", "the shapes are crosses", _is("shape", 3)),
    Attribute("red", "the shapes are red", _is("colour", 0)),
    Attribute("green", "the shapes are green", _is("colour", 1)),
    Attribute("blue", "the shapes are blue", _is("colour", 2)),
    Attribute("yellow", "the shapes are yellow", _is("colour", 3)),
    Attribute("magenta", "the shapes are magenta", _is("colour", 4)),
    Attribute("cyan", "the shapes are cyan", _is("colour", 5)),
    Attribute("small", "the shapes are small", _is("size", 0)),
    Attribute("large", "the shapes are large", _is("size", 2)),
    Attribute("single", "one shape", _is("count", 0)),
    Attribute("crowded", "three shapes", _is("count", 2)),
    Attribute("left_heavy", "more shapes in the left column than the right",
              _is("balance", 0)),
    # groups and places: 22% to 56%
    Attribute("warm", "red, yellow or magenta shapes", _warm),
    Attribute("even", "as many shapes left as right", _is("balance", 1)),
    Attribute("centre", "a shape in the centre cell", lambda f: _cell(f["cells"], 4)),
    Attribute("top_row", "a shape in the top row", lambda f: _row(f["cells"], 0)),
    # combinations: 1.4% to 8%
    Attribute("red_circle", "red circles", lambda f: (f["shape"] == 0) & (f["colour"] == 0)),
    Attribute("blue_square", "blue squares", lambda f: (f["shape"] == 1) & (f["colour"] == 2)),
    Attribute("large_triangle", "large triangles",
              lambda f: (f["shape"] == 2) & (f["size"] == 2)),
    Attribute("small_cross", "small crosses", lambda f: (f["shape"] == 3) & (f["size"] == 0)),
    Attribute("lone_circle", "one circle", lambda f: (f["shape"] == 0) & (f["count"] == 0)),
    Attribute("green_crowd", "three green shapes",
              lambda f: (f["colour"] == 1) & (f["count"] == 2)),
    Attribute("cyan_centre", "a cyan shape in the centre cell",
              lambda f: (f["colour"] == 5) & _cell(f["cells"], 4)),
    Attribute("diagonal", "shapes in two opposite corners",
              lambda f: (_cell(f["cells"], 0) & _cell(f["cells"], 8))
              | (_cell(f["cells"], 2) & _cell(f["cells"], 6))),
    Attribute("red_small_square", "small red squares",
              lambda f: (f["shape"] == 1) & (f["colour"] == 0) & (f["size"] == 0)),
    # heavy label noise (as CelebA's subjective attributes)
    Attribute("noisy_triangle", "triangles, a third of the labels flipped",
              _is("shape", 2), flip=0.33),
    Attribute("noisy_warm", "warm colours, a quarter of the labels flipped", _warm, flip=0.25),
    # near-duplicates of others (as Male / No_Beard)
    Attribute("reddish", "near-duplicate of red (3% flipped)", _is("colour", 0), flip=0.03),
    Attribute("busy", "near-duplicate of crowded (3% flipped)", _is("count", 2), flip=0.03),
    # the planted answer: labels independent of the image, best weight zero
    *(Attribute(f"noise{i}", "pure noise, half positive, independent of the image", None,
                base_rate=0.5) for i in range(8)),
)
ATTRIBUTE_TASKS = tuple(Task(a.name, 2, a.description) for a in ATTRIBUTES)
PURE_NOISE = tuple(a.name for a in ATTRIBUTES if a.pure_noise)


def attribute_labels(factors: Factors, seed: int, split_id: int) -> dict[str, np.ndarray]:
    """Every attribute's 0/1 labels (int64) of the scenes with these ``factors``, their flips
    and pure noise drawn from the streams of ``seed`` and ``split_id``."""
    n = len(factors["shape"])
    out = {}
    for index, attribute in enumerate(ATTRIBUTES):
        rng = np.random.default_rng([seed, split_id, ATTRIBUTE_STREAM, index])
        if attribute.rule is None:
            labels = rng.random(n) < attribute.base_rate
        else:
            labels = np.asarray(attribute.rule(factors), dtype=bool)
            if attribute.flip:
                labels ^= rng.random(n) < attribute.flip
        out[attribute.name] = labels.astype(np.int64)
    return out


__all__ = ["ATTRIBUTES", "ATTRIBUTE_TASKS", "PURE_NOISE", "Attribute", "attribute_labels"]
