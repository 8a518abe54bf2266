"""No code runs from a file: a crafted checkpoint, search state, Ray member checkpoint or CIFAR
batch whose unpickling would run a payload is refused with one line naming the file, the
payload never runs (its marker file is never created) and nothing in the folder changes.

Each crafted file holds an object whose ``__reduce__`` calls ``pathlib.Path.touch(marker)`` or
``os.system("touch marker")``; a control loads one with plain ``pickle`` to prove the payload
is real. The real files (a checkpoint, the official-layout CIFAR batches) still load.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import pickle

import pytest
import torch
import yaml

from scalarize.benchmarks import load_benchmark
from scalarize.benchmarks.fixtures import write_fixture
from scalarize.config import load_config
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.runs.layout import CHECKPOINT, METRICS, SEARCH_STATE, SUMMARY
from scalarize.runs.torch_io import load_torch, save_torch
from scalarize.search.decide import initial_points
from scalarize.search.member import search_data
from scalarize.search.resolve import resolve_strategy
from scalarize.search.spec import SearchConfig
from scalarize.training import Callback
from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot

SEARCH = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count]
  options: {n_train: 64, n_val: 16, n_test: 16, image_size: 16}
model: {spec: vit-d1-w16-p8}
train: {epochs: 2, batch_size: 32, device: cpu}
search: {strategy: pbt, population: 2, interval: 1, quantile: 0.5}
"""


class Touch:
    """Unpickled, it creates ``marker`` (a harmless stand-in for any code)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class Shell:
    """Unpickled, it runs a shell command that creates ``marker``."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


PAYLOADS = {"touch": Touch, "shell": Shell}


def _crafted_torch(path: pathlib.Path, marker: pathlib.Path, kind: str) -> None:
    """A file that looks like a checkpoint and runs the payload when fully unpickled:
    ``zip`` is torch's format, ``pickle`` a bare pickle (torch's legacy format)."""
    payload = {"epoch": 1, "step": 2, "model": Touch(marker)}
    if kind == "zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "the payload ran"


@pytest.mark.parametrize("kind", ["zip", "pickle", "cifar"])
def test_the_crafted_payload_is_real(tmp_path, kind):
    """The control: loaded the unsafe way, each kind of crafted file does run its payload."""
    control = tmp_path / "control"
    if kind == "cifar":
        root = _crafted_cifar(tmp_path / "data", control, "touch")
        with open(root / "cifar-10-batches-py" / "data_batch_2", "rb") as handle:
            pickle.load(handle, encoding="bytes")  # what the reader did before
    else:
        _crafted_torch(tmp_path / "x.pt", control, kind)
        with contextlib.suppress(RuntimeError):  # a bare pickle: run, then "no magic number"
            torch.load(tmp_path / "x.pt", weights_only=False)  # what load_torch did before
    assert control.exists()


# -- run checkpoints -----------------------------------------------------------------------------
class _Kill(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt


def _train_args(config, out, *extra):
    return ["train", str(config), *TINY, "train.epochs=2", "--out", str(out), "--quiet", *extra]


def _killed_run(config, out) -> RunDir:
    """A run stopped after epoch 1 (its checkpoint written, epoch 2 not)."""
    cfg = load_config(config, [*TINY, "train.epochs=2"])
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, out, callbacks=[_Kill()], progress=False)
    (run,) = [RunDir(p) for p in out.iterdir()]
    assert (run.path / CHECKPOINT).is_file() and not (run.path / SUMMARY).exists()
    return run


@pytest.mark.parametrize("kind", ["zip", "pickle"])
def test_crafted_checkpoint_is_refused_on_resume(cli, config_file, tmp_path, marker, kind):
    config, out = config_file(), tmp_path / "runs"
    run = _killed_run(config, out)
    _crafted_torch(run.path / CHECKPOINT, marker, kind)
    before = snapshot(out)
    result = cli(*_train_args(config, out, "--resume"))
    assert_one_line_error(result, str(run.path / CHECKPOINT), "--overwrite")
    if kind == "zip":
        assert "unsafe" in result.err and "getattr" in result.err
    assert_unchanged(before, out)  # metrics.jsonl and config.yaml untouched


def test_crafted_checkpoint_with_a_shell_payload_is_refused(cli, config_file, tmp_path, marker):
    config, out = config_file(), tmp_path / "runs"
    run = _killed_run(config, out)
    torch.save({"epoch": 1, "history": [Shell(marker)]}, run.path / CHECKPOINT)
    metrics = (run.path / METRICS).read_bytes()
    before = snapshot(out)
    result = cli(*_train_args(config, out, "--resume"))
    assert_one_line_error(result, CHECKPOINT, "system", "unsafe")
    assert_unchanged(before, out)
    assert (run.path / METRICS).read_bytes() == metrics


def test_a_real_checkpoint_resumes_to_identical_results(cli, config_file, tmp_path):
    config = config_file()
    assert cli(*_train_args(config, tmp_path / "whole")).status == 0
    run = _killed_run(config, tmp_path / "killed")
    result = cli(*_train_args(config, tmp_path / "killed", "--resume"))
    assert result.status == 0, result.err
    whole = RunDir(tmp_path / "whole" / run.path.name)
    assert run.read_summary().test == whole.read_summary().test
    lines = [json.loads(x) for x in (run.path / METRICS).read_text().splitlines()]
    assert [r["val_loss"] for r in lines] == [r.val_loss for r in whole.read_metrics()]


# -- search state and Ray member checkpoints -----------------------------------------------------
def test_crafted_search_state_is_refused_when_the_search_is_run_again(cli, tmp_path, marker):
    config, out = tmp_path / "search.yaml", tmp_path / "search"
    config.write_text(SEARCH)
    args = ["search", str(config), "--out", str(out), "--quiet"]
    assert cli(*args).status == 0
    (out / SUMMARY).unlink()  # as if killed after an interval
    state = torch.load(out / SEARCH_STATE, weights_only=True)
    state["members"][0]["rng"] = Shell(marker)
    torch.save(state, out / SEARCH_STATE)
    before = snapshot(out)
    result = cli(*args)
    assert_one_line_error(result, str(out / SEARCH_STATE), "unsafe", "system")
    assert_unchanged(before, out)


def test_a_ray_member_checkpoint_loads_and_a_crafted_one_is_refused(tmp_path, marker):
    """What the Ray engine's trainable saves (``MemberTrainable.save_checkpoint``) loads back
    exactly through ``load_torch``; a crafted one is refused."""
    ray_population = pytest.importorskip("scalarize.engines.ray_population")
    config = SearchConfig.model_validate(yaml.safe_load(SEARCH))
    points = initial_points(config, search_data(config).objectives,
                            resolve_strategy(config.search).strategy)  # as the driver draws
    worker = ray_population._Worker(SEARCH, points)
    member = worker.fresh(0)
    list(member.advance(1))
    path = tmp_path / "checkpoint_000001" / ray_population.MEMBER_FILE
    path.parent.mkdir()
    save_torch(path, {"member": 0, "epoch": 1, "id": worker.saved(0),
                      "state": member.state_dict()})
    saved = load_torch(path, "member checkpoint", "delete the search folder to start again")
    assert saved["member"] == 0 and saved["epoch"] == 1
    copy = worker.restored(1, saved, {"w0": 0.25, "w1": 0.75})
    assert copy is not member and copy.lineage == [[1, 0]]
    mine, theirs = member.trainer.model.state_dict(), copy.trainer.model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert torch.equal(copy.rng, member.rng)

    torch.save({"member": 0, "epoch": 1, "id": "x", "state": Touch(marker)}, path)
    with pytest.raises(ScalarizeError, match=r"member checkpoint .*member\.pt is unreadable") as e:
        load_torch(path, "member checkpoint", "delete the search folder to start again")
    assert "\n" not in str(e.value) and "unsafe" in str(e.value)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_load_torch_refuses_a_crafted_file(tmp_path, marker, payload):
    path = tmp_path / "state.pt"
    torch.save({"ok": torch.zeros(2), "evil": PAYLOADS[payload](marker)}, path)
    with pytest.raises(ScalarizeError) as refused:
        load_torch(path, "search state", "delete the folder to restart")
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message and "unsafe" in message and "delete the folder" in message


# -- CIFAR-10 batches ----------------------------------------------------------------------------
def _crafted_cifar(root: pathlib.Path, marker: pathlib.Path, payload: str,
                   batch: str = "data_batch_2") -> pathlib.Path:
    options = write_fixture("cifar10_stl10", root)
    path = root / "cifar-10-batches-py" / batch
    crafted = {b"data": PAYLOADS[payload](marker), b"labels": [0, 1], b"batch_label": b"x"}
    path.write_bytes(pickle.dumps(crafted, protocol=3))  # 2 would name _codecs first
    return pathlib.Path(options["root"])


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_crafted_cifar_batch_is_refused_by_the_benchmark(tmp_path, marker, payload):
    root = _crafted_cifar(tmp_path / "data", marker, payload)
    with pytest.raises(ScalarizeError) as refused:
        load_benchmark("cifar10_stl10", view="mdl", root=root)
    message = str(refused.value)
    assert "\n" not in message and "data_batch_2" in message and "download" in message
    assert ("getattr" if payload == "touch" else "system") in message


def test_crafted_cifar_batch_is_refused_by_data_info(cli, tmp_path, marker):
    root = _crafted_cifar(tmp_path / "data", marker, "shell", batch="test_batch")
    before = snapshot(root)
    result = cli("data", "info", "cifar10_stl10", f"root={root}", "image_size=16")
    assert_one_line_error(result, "test_batch", "posix.system", "download")
    assert_unchanged(before, root)


def test_the_official_layout_fixture_still_loads_through_data_info(cli, tmp_path):
    options = write_fixture("cifar10_stl10", tmp_path / "data")
    result = cli("data", "info", "cifar10_stl10", f"root={options['root']}", "image_size=16",
                 "--view", "mdl")
    assert result.status == 0, result.err
    assert "cifar10" in result.out and "stl10" in result.out
