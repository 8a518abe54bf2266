"""Scalarization weights: one point on the probability simplex, validated once.

Weights come from users in several shapes (``"uniform"``, ``"onehot:shape"``, a list, a mapping
from objective name to weight). :func:`parse_weights` turns any of them into a
:class:`SimplexWeights`, which is checked once (length, finite, non-negative, positive sum) and
normalised; everything downstream trusts it.

Example:
    >>> w = parse_weights([1, 3], ["a", "b"])
    >>> w.values
    (0.25, 0.75)
    >>> parse_weights("onehot:b", ["a", "b"]).values
    (0.0, 1.0)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from scalarize.errors import ScalarizeError

#: The longest weights label spelled out in full (file names hold 255 bytes; a run name
#: holds the label and more).
MAX_LABEL = 60

WeightsSpec = str | Sequence[float] | Mapping[str, float]


@dataclass(frozen=True)
class SimplexWeights:
    """Non-negative weights that sum to one, one per objective (task or domain), in order."""

    names: tuple[str, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values):
            raise ScalarizeError(
                f"got {len(self.values)} weights for {len(self.names)} objectives "
                f"({', '.join(self.names)}); give exactly one weight per objective"
            )
        if not self.values:
            raise ScalarizeError("weights are empty; give one weight per objective")
        for name, value in zip(self.names, self.values, strict=True):
            if not math.isfinite(value):
                raise ScalarizeError(f"weight of {name!r} is {value}; weights must be finite")
            if value < 0:
                raise ScalarizeError(f"weight of {name!r} is {value}; weights must be >= 0")
        values = self.values
        peak = max(values)
        if peak <= 0:
            raise ScalarizeError("all weights are zero; at least one weight must be positive")
        if peak > 1e300:  # each finite, their sum maybe not: scale by the largest first
            values = tuple(v / peak for v in values)
        total = math.fsum(values)
        object.__setattr__(self, "values", tuple(v / total for v in values))

    @classmethod
    def restore(cls, mapping: Mapping[str, float]) -> SimplexWeights:
        """Weights read back from a record (``{objective: weight}``), checked like any others
        but not normalised again, so a written point reads back bit for bit."""
        weights = cls(tuple(mapping), tuple(float(v) for v in mapping.values()))
        object.__setattr__(weights, "values", tuple(float(v) for v in mapping.values()))
        return weights

    def as_dict(self) -> dict[str, float]:
        """``{objective: weight}``."""
        return dict(zip(self.names, self.values, strict=True))

    @property
    def is_single_task(self) -> bool:
        """True when exactly one objective has all the weight (a single-task baseline)."""
        return sum(v > 0 for v in self.values) == 1

    def label(self) -> str:
        """A short, file-name-safe description such as ``uniform``, ``onehot-shape`` or
        ``w0.25-0.75``; past :data:`MAX_LABEL` characters (many objectives), the number of
        objectives and a digest of the weights instead, such as ``w16-fdbfe70617``.

        Example:
            >>> SimplexWeights(tuple("abcdefghijklmnop"), tuple(range(1, 17))).label()
            'w16-fdbfe70617'
        """
        if self.is_single_task:
            return "onehot-" + self.names[self.values.index(1.0)]
        if all(math.isclose(v, self.values[0]) for v in self.values):
            return "uniform"
        label = "w" + "-".join(f"{v:.4g}" for v in self.values)
        if len(label) <= MAX_LABEL:
            return label
        digest = hashlib.sha256(label.encode()).hexdigest()[:10]
        return f"w{len(self.values)}-{digest}"


def parse_weights(spec: WeightsSpec, names: Sequence[str]) -> SimplexWeights:
    """Build :class:`SimplexWeights` for ``names`` from a preset string, a list or a mapping.

    Presets: ``uniform``; ``onehot:<name>`` (all weight on one objective: the single-task
    baseline); a comma-separated list such as ``"0.2,0.8"``.
    """
    names = tuple(names)
    if isinstance(spec, str):
        text = spec.strip()
        if text == "uniform":
            return SimplexWeights(names, tuple(1.0 for _ in names))
        if text.startswith("onehot:"):
            target = text.removeprefix("onehot:")
            if target not in names:
                raise ScalarizeError(
                    f"onehot target {target!r} is not an objective; choose one of: "
                    f"{', '.join(names)}"
                )
            return SimplexWeights(names, tuple(float(n == target) for n in names))
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError:
            raise ScalarizeError(
                f"cannot read weights {spec!r}; use 'uniform', 'onehot:<name>' or numbers "
                "such as '0.3,0.7'"
            ) from None
        return SimplexWeights(names, tuple(values))
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ScalarizeError(
                f"weights name unknown objectives {unknown}; valid names: {', '.join(names)}"
            )
        return SimplexWeights(names, tuple(float(spec.get(n, 0.0)) for n in names))
    try:
        numbers = tuple(float(v) for v in spec)
    except (TypeError, ValueError):
        raise ScalarizeError(f"cannot read weights {spec!r}; give a list of numbers") from None
    return SimplexWeights(names, numbers)


def _restore(value: Any) -> SimplexWeights:
    if isinstance(value, SimplexWeights):
        return value
    if isinstance(value, Mapping):
        try:
            return SimplexWeights.restore(value)
        except ScalarizeError as exc:  # pydantic reports a ValueError with the record's path
            raise ValueError(str(exc)) from None
    raise ValueError("weights must be a mapping {objective: weight}")


WeightsRecord = Annotated[SimplexWeights, PlainValidator(_restore),
                          PlainSerializer(SimplexWeights.as_dict)]
"""Weights as a field of a record: a :class:`SimplexWeights` in Python, ``{objective:
weight}`` on disk."""
