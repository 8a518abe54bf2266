"""Folders written by the previous release (0.1, copied from a `make demo` run in
``release_0_1/``) read through the typed records and dump back to the same JSON."""

import json
import shutil
from pathlib import Path

import pytest

from scalarize.analysis.capacity import load_sweep
from scalarize.runs import RunDir, SearchDir
from scalarize.runs.records import (
    POPULATION_EVENT,
    ConflictRecord,
    EpochRecord,
    ExploitEvent,
    RunSummary,
    SearchPlan,
    SearchSummary,
    SweepPlan,
)

OLD = Path(__file__).parent / "release_0_1"
RUN = OLD / "sweep" / "shapes-mtl-resnet8-x0.25-uniform-static-s0"


def _json(text: str):
    return json.loads(text)


def _roundtrip(record) -> object:
    return json.loads(json.dumps(record.dump()))


@pytest.mark.parametrize(("path", "model"), [
    (RUN / "summary.json", RunSummary), (OLD / "sweep" / "sweep.json", SweepPlan),
    (OLD / "search" / "search.json", SearchPlan), (OLD / "search" / "summary.json",
                                                   SearchSummary)])
def test_old_files_read_and_dump_back_unchanged(path, model):
    tree = _json(path.read_text())
    assert _roundtrip(model.model_validate(tree)) == tree


@pytest.mark.parametrize(("name", "validate"), [
    ("metrics.jsonl", EpochRecord.model_validate),
    ("conflicts.jsonl", ConflictRecord.model_validate)])
def test_old_lines_read_and_dump_back_unchanged(name, validate):
    for line in (RUN / name).read_text().splitlines():
        assert _roundtrip(validate(_json(line))) == _json(line)


def test_old_population_lines_read_and_dump_back_unchanged():
    lines = (OLD / "search" / "population.jsonl").read_text().splitlines()
    events = [POPULATION_EVENT.validate_python(_json(line)) for line in lines]
    assert {e.event for e in events} == {"epoch", "exploit"}
    assert [_roundtrip(e) for e in events] == [_json(line) for line in lines]


def test_old_ray_exploit_lines_without_weights_before_still_read():
    event = POPULATION_EVENT.validate_python(
        {"event": "exploit", "member": 1, "epoch": 2, "parent": 0, "weights_before": None,
         "weights": {"a": 0.5, "b": 0.5}})
    assert isinstance(event, ExploitEvent) and event.weights_before is None


def test_old_folders_work_with_the_store_and_the_analysis(tmp_path):
    shutil.copytree(OLD, tmp_path / "old")
    run = RunDir(tmp_path / "old" / "sweep" / RUN.name)
    summary = run.read_summary()
    assert summary is not None and summary.weights_label == "uniform"
    assert summary.weights.as_dict() == _json((RUN / "summary.json").read_text())["weights"]
    assert [r.epoch for r in run.read_metrics()] == [1, 2]
    assert run.read_metrics()[0].conflict_share is not None  # a probe's key, kept
    assert len(run.read_conflicts()) == 2
    frame = load_sweep(tmp_path / "old" / "sweep")
    assert frame.name.tolist() == [RUN.name] and frame.attrs["planned"] == 14
    search = SearchDir(tmp_path / "old" / "search")
    assert search.read_summary().best_member == 3 and len(search.read_events()) == 9


def test_a_corrupt_summary_is_one_clear_error(tmp_path):
    from scalarize.errors import ScalarizeError

    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    (run.path / "summary.json").write_text('{"run": "r"}')
    with pytest.raises(ScalarizeError, match="not a valid RunSummary"):
        run.read_summary()
