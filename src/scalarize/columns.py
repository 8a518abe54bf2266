"""The columns of a benchmark's published results table, on the bottom layer: a benchmark
declares them (:attr:`scalarize.benchmarks.Dataset.columns`), a comparison's plan stores them
(``compare.json``, :class:`scalarize.runs.records.ComparePlan`) and the comparison table shows
them, so the one class sits below both the benchmarks and the run store.

Example:
    >>> from pydantic import TypeAdapter
    >>> miou = Column("Segmentation", "mIoU", "segmentation", "score", True, 100.0)
    >>> TypeAdapter(Column).validate_python(TypeAdapter(Column).dump_python(miou)) == miou
    True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of the results table a benchmark's papers publish (e.g. NYUv2's ``mIoU``):
    ``metric`` of ``task`` (as the task's kind reports it) under ``group`` / ``label``, shown
    × ``scale`` (100 for percentages). ``scalarize compare`` prints a benchmark's columns and
    their Δm%."""

    group: str
    label: str
    task: str
    metric: str
    higher_is_better: bool
    scale: float = 1.0

    def __post_init__(self) -> None:  # a float, as compare.json has always stored it
        object.__setattr__(self, "scale", float(self.scale))


__all__ = ["Column"]
