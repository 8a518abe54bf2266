"""docs/methods.md has one table row per registered method, and each row names an oracle test
module that exists and covers that method."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from scalarize.methods import METHODS

DOC = Path(__file__).parents[1] / "docs" / "methods.md"


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `([a-z_]+)` \|", line)
        if match:
            assert match[1] not in rows, f"docs/methods.md has two rows for {match[1]}"
            rows[match[1]] = line
    return rows


def test_the_table_has_one_row_per_registered_method():
    rows = _rows()
    assert sorted(rows) == sorted(METHODS.names()), (
        f"missing: {sorted(set(METHODS.names()) - set(rows))}; "
        f"not registered: {sorted(set(rows) - set(METHODS.names()))}")


def test_each_row_names_an_oracle_module_that_covers_the_method():
    for name, row in _rows().items():
        modules = re.findall(r"`(test_[a-z_]+)\.py`", row)
        assert modules, f"the row of {name} names no oracle test"
        covered = set().union(*(getattr(importlib.import_module(
            f"tests.methods.oracles.{m}"), "COVERED", set()) for m in modules))
        assert name in covered, f"{name}: {modules} do not cover it"
