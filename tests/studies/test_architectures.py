"""The architectures with task-specific paths (MTAN, Cross-stitch, MMoE, PLE) in a capacity
sweep under a static, a loss-based and a gradient-based method, with the conflict probe on."""

from __future__ import annotations

import json

import pytest

from scalarize.runs import RunDir
from scalarize.studies.sweep import load_sweep_config, run_sweep
from tests.conftest import tiny_study

#: each family's capacity template and the values of its one axis
CAPACITIES = {
    "mtan": {"template": "mtan-resnet8-x{x}", "axes": {"x": [0.125, 0.25]}},
    "cross-stitch": {"template": "cross-stitch-resnet8-x{x}", "axes": {"x": [0.125, 0.25]}},
    "mmoe": {"template": "mmoe-e{e}-w8", "axes": {"e": [1, 2]}},
    "ple": {"template": "ple-l{l}-e1-w8", "axes": {"l": [1, 2]}},
}


@pytest.mark.parametrize("method", ["static", "uw", "pcgrad"])
@pytest.mark.parametrize("family", sorted(CAPACITIES))
def test_a_capacity_sweep_trains_with_the_probe_on(tmp_path, family, method):
    path = tmp_path / "sweep.yaml"
    path.write_text(tiny_study(
        sweep={"capacities": CAPACITIES[family], "weights": {}, "seeds": [0],
               "single_task": False},
        method={"name": method}, probes={"conflicts": {"every": 1}}))
    plan = run_sweep(load_sweep_config(path), tmp_path / "out", progress=False)
    assert len(plan) == 2
    params = []
    for planned in plan:
        run = RunDir(tmp_path / "out" / planned.name)
        summary = run.read_summary()
        assert summary is not None and summary.model.spec.startswith(family)
        params.append(summary.model.params)
        records = [json.loads(line) for line in (run.path / "conflicts.jsonl").read_text()
                   .splitlines()]
        assert records and all(r["objectives"] == ["colour", "count"] for r in records)
        assert all(-1.0 <= r["cos_mean"] <= 1.0 for r in records)
    assert params[0] < params[1]  # the knob is the capacity
