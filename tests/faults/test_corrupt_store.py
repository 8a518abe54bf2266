"""A corrupt run among good ones: ``scalarize runs``, ``analyze capacity``, ``analyze
conflicts`` and ``report`` list the good ones, warn once naming the bad one and exit 0; the
study's own files being corrupt stays a one-line error naming the file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from scalarize.analysis.capacity import load_sweep
from scalarize.analysis.conflicts import conflict_epochs
from scalarize.errors import ScalarizeError, SkippedRunWarning
from scalarize.runs import EpochRecord, EvalResult, RunDir, RunSummary, load_runs
from scalarize.runs.records import ConflictRecord, LastValidation, ModelInfo
from scalarize.weights import parse_weights
from tests.faults.conftest import assert_one_line_error, assert_unchanged, snapshot

OBJECTIVES = ["a", "b"]
# (capacity, params, label, weights, single task, seed, test accuracy per objective)
SWEEP = [
    (cap, params, label, weights, single, seed, acc)
    for seed in (0, 1)
    for cap, params in (("small", 10), ("big", 20))
    for label, weights, single, acc in (
        ("onehot-a", {"a": 1, "b": 0}, "a", {"a": 0.6, "b": 0.1}),
        ("onehot-b", {"a": 0, "b": 1}, "b", {"a": 0.1, "b": 0.5}),
        ("uniform", {"a": .5, "b": .5}, None, {"a": 0.55 + 0.01 * seed, "b": 0.45}),
        ("skew", {"a": .8, "b": .2}, None, {"a": 0.58, "b": 0.40 + 0.01 * params / 10}),
    )
]
CORRUPTIONS = {
    "summary: bad JSON": ("summary.json", b'{"run": "x", "objec'),
    "summary: wrong record": ("summary.json", b'{"run": "x", "objectives": 3}'),
    "summary: not UTF-8": ("summary.json", b"\xff\xfe\x00garbage"),
    "config: bad YAML": ("config.yaml", b"seed: [0\nmodel: {"),
    "config: not UTF-8": ("config.yaml", b"seed: \xff\xfe\n"),
    "config: a list": ("config.yaml", b"- 1\n- 2\n"),
    "metrics: wrong record": ("metrics.jsonl", b'{"epoch": "one"}\n'),
}


def _config(seed: int, spec: str) -> str:
    return (f"seed: {seed}\nbenchmark: {{name: shapes, view: mtl}}\nmodel: {{spec: {spec}}}\n"
            "method: {name: linear}\n")


def _write_run(folder: Path, name: str, cap: str, params: int, label: str,
               weights: dict[str, float], seed: int, acc: dict[str, float],
               probed: bool = False) -> RunDir:
    run = RunDir(folder / name)
    run.prepare(_config(seed, cap))
    w = parse_weights(weights, OBJECTIVES)
    for epoch in (1, 2, 3, 4):
        extra = ({"conflict_share": 0.1 * epoch + 0.01 * seed, "cos_mean": 0.5 - 0.1 * epoch,
                  "gms_mean": 0.2} if probed else {})
        run.append_metrics(EpochRecord(
            epoch=epoch, step=epoch, lr=0.1, train_loss={"a": 1.0, "b": 1.0},
            train_objective=1.0, val_acc=acc, val_loss={"a": 1.0, "b": 1.0},
            val_avg_acc=0.4 + 0.05 * epoch + 0.01 * seed, weights=w, epoch_seconds=1.0,
            step_seconds=0.1, **extra))
        if probed:
            run.append_conflicts([ConflictRecord(
                step=epoch, epoch=epoch, objectives=OBJECTIVES, cos=[[1, 0.1], [0.1, 1]],
                cos_mean=0.1, cos_min=0.1, conflict_share=0.1 * epoch, gms_mean=0.2,
                norms=[1, 1], cos_to_update=[0.5, 0.5])])
    avg = sum(acc.values()) / len(acc)
    run.write_summary(RunSummary(
        run=name, objectives=OBJECTIVES, weights=w, weights_label=label,
        model=ModelInfo(spec=cap, params=params, encoder_params=params, flops=0), epochs=4,
        steps=4, val=LastValidation(acc=acc, avg_acc=avg + 0.01 * seed),
        test=EvalResult(acc=acc, avg_acc=avg), train_seconds=1.0, step_seconds=0.1,
        device="cpu"))
    return run


def _sweep(folder: Path, probed: bool = False) -> list[str]:
    """A finished fake sweep under ``folder``; the names of its runs."""
    planned = []
    for cap, params, label, weights, single, seed, acc in SWEEP:
        name = f"{cap}-{label}-s{seed}"
        _write_run(folder, name, cap, params, label, weights, seed, acc, probed)
        planned.append({"name": name, "capacity": cap, "axes": {"width": params},
                        "weights": weights, "weights_label": label, "single_task": single,
                        "seed": seed})
    (folder / "sweep.json").write_text(json.dumps(
        {"objectives": OBJECTIVES, "view": "mtl", "runs": planned}))
    (folder / "sweep.yaml").write_text("seed: 0\n")
    return [p["name"] for p in planned]


BAD = "big-skew-s1"


def _corrupt(folder: Path, name: str, file: str, data: bytes) -> None:
    (folder / name / file).write_bytes(data)


def _warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("scalarize: warning:")]


def _assert_warned_once(err: str, folder: Path) -> None:
    lines = _warnings_in(err)
    assert len(lines) == 1, err
    assert str(folder) in lines[0] and "skipped run" in lines[0], lines[0]
    assert "Traceback" not in err and "error" not in err.replace("warning", ""), err


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_runs_lists_the_good_ones_and_warns_once(tmp_path, cli, corruption):
    names = _sweep(tmp_path)
    file, data = CORRUPTIONS[corruption]
    _corrupt(tmp_path, BAD, file, data)
    before = snapshot(tmp_path)
    result = cli("runs", tmp_path, "--format", "csv")
    assert result.status == 0, result.err
    _assert_warned_once(result.err, tmp_path / BAD)
    assert file in _warnings_in(result.err)[0]
    listed = [line.split(",")[0] for line in result.out.strip().splitlines()[1:]]
    assert sorted(listed) == sorted(n for n in names if n != BAD)
    assert_unchanged(before, tmp_path)


def test_analyze_capacity_skips_a_corrupt_summary(tmp_path, cli):
    _sweep(tmp_path)
    _corrupt(tmp_path, BAD, "summary.json", b"{not json")
    result = cli("analyze", "capacity", tmp_path, "--format", "csv")
    assert result.status == 0, result.err
    _assert_warned_once(result.err, tmp_path / BAD)
    assert "summary.json" in result.err
    assert "small" in result.out and "big" in result.out


def test_report_skips_a_corrupt_summary(tmp_path, cli):
    _sweep(tmp_path)
    _corrupt(tmp_path, BAD, "summary.json", b'{"run": 1}')
    result = cli("report", tmp_path)
    assert result.status == 0, result.err
    _assert_warned_once(result.err, tmp_path / BAD)
    page = (tmp_path / "report" / "report.md").read_text()
    assert "15 of 16 planned runs finished" in page


def test_analyze_conflicts_skips_a_corrupt_run(tmp_path, cli):
    _sweep(tmp_path, probed=True)
    _corrupt(tmp_path, BAD, "metrics.jsonl", b'{"epoch": "x"}\n')
    result = cli("analyze", "conflicts", tmp_path, "--format", "csv", "--curves")
    assert result.status == 0, result.err
    _assert_warned_once(result.err, tmp_path / BAD)
    assert BAD not in result.out and "big-uniform-s1" in result.out


def test_loaders_warn_with_skipped_run_warning(tmp_path):
    _sweep(tmp_path, probed=True)
    _corrupt(tmp_path, BAD, "config.yaml", b"seed: [")
    with pytest.warns(SkippedRunWarning, match=f"{BAD}.*config.yaml is not valid YAML"):
        frame = load_runs(tmp_path)
    assert len(frame) == len(SWEEP) - 1
    with pytest.warns(SkippedRunWarning, match=BAD):
        epochs = conflict_epochs(tmp_path)
    assert BAD not in set(epochs.run)
    (tmp_path / "small-uniform-s0" / "summary.json").write_bytes(b"\x00\xff")
    with pytest.warns(SkippedRunWarning,
                      match=r"small-uniform-s0.*summary\.json is not a valid RunSummary"):
        runs = load_sweep(tmp_path)
    assert len(runs) == len(SWEEP) - 1


def test_unreadable_run_is_skipped(tmp_path):
    _sweep(tmp_path)
    (tmp_path / BAD / "summary.json").unlink()
    (tmp_path / BAD / "summary.json").mkdir()  # a folder where the file belongs
    with pytest.warns(SkippedRunWarning, match="summary.json is a folder, not a file"):
        frame = load_runs(tmp_path)
    assert BAD not in set(frame.run)


def test_every_run_corrupt_is_a_clear_result(tmp_path, cli):
    names = _sweep(tmp_path)
    for name in names:
        _corrupt(tmp_path, name, "summary.json", b"{")
    result = cli("runs", tmp_path)
    assert result.status == 0 and "no runs under" in result.out
    assert len(_warnings_in(result.err)) == len(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRunWarning)
        result = cli("analyze", "capacity", tmp_path)
    assert_one_line_error(result, "no finished run", str(tmp_path))


@pytest.mark.parametrize("file,data,says", [
    ("sweep.json", b"{", "sweep.json is not a valid SweepPlan"),
    ("sweep.json", b"\xff\xfe", "sweep.json is not a valid SweepPlan"),
])
def test_corrupt_plan_is_one_line_naming_it(tmp_path, cli, file, data, says):
    _sweep(tmp_path)
    (tmp_path / file).write_bytes(data)
    before = snapshot(tmp_path)
    result = cli("analyze", "capacity", tmp_path)
    assert_one_line_error(result, says)
    assert_unchanged(before, tmp_path)


def test_a_file_given_for_a_folder_names_it_and_the_fix(tmp_path, cli):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert_one_line_error(cli("runs", path), "notes.txt is a file", "give the folder")
    assert_one_line_error(cli("analyze", "capacity", path), "notes.txt is a file",
                          "scalarize sweep")
    assert_one_line_error(cli("analyze", "capacity", tmp_path / "nope"), "nope does not exist")
    assert_one_line_error(cli("report", path), "is a file, not a folder")


def test_corrupt_run_config_is_one_line_on_resume(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    (run.path / "config.yaml").write_bytes(b"seed: [0\n")
    with pytest.raises(ScalarizeError, match=r"config.yaml is not valid YAML at line \d"):
        run.prepare("seed: 0\n", resume=True)
    (run.path / "config.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ScalarizeError, match=r"config\.yaml is not UTF-8 text"):
        run.read_config()
