"""Faults that used to end in a traceback: each is now one line naming the culprit, exit 2,
and nothing under the working folder changes."""

from __future__ import annotations

import errno
import zipfile

import numpy as np
import pytest

from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot

# -- config files ------------------------------------------------------------------------------

CONFIG_FILES = {
    "not-utf8": (b"\xff\xfe seed: 0\n", "not UTF-8"),
    "latin1": ("name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "binary": (bytes(range(256)), "c.yaml"),
    "list": (b"- 1\n- 2\n", "mapping"),
    "scalar": (b"42\n", "mapping"),
    "bad-yaml": (b"seed: [1, 2\n", "not valid YAML"),
    "unknown-section": (b"bogus: 1\n", "bogus"),
    "unknown-field": (b"train: {epochz: 3}\n", "train.epochz"),
    "wrong-type": (b"train: {lr: fast}\n", "train.lr"),
    "section-not-mapping": (b"train: 5\n", "train"),
    "duplicate-key": (b"seed: 0\ntrain: {lr: 0.1}\nseed: 3\n", "'seed' is given twice"),
    "huge": (b"seed: 0\n" + b"#" * (2 << 20), "MiB"),
    "alias-bomb": (b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n".encode()
        for i in range(6)) + b"probes: {conflicts: {every: *g}}\n", "YAML aliases"),
    "recursive-alias": (b"probes: &p {conflicts: {every: *p}}\n", "YAML aliases"),
    "typo-key-among-errors": (b"train: {lr: fast, epochz: 3}\n", "epochz"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_FILES))
def test_bad_config_file(cli, tmp_path, case):
    content, culprit = CONFIG_FILES[case]
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "--out", tmp_path / "runs")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)


def test_folder_given_as_config(cli, tmp_path):
    before = snapshot(tmp_path)
    result = cli("train", tmp_path, "--out", tmp_path / "runs")
    assert_one_line_error(result, "is a folder")
    assert_unchanged(before, tmp_path)


# -- numbers out of range ----------------------------------------------------------------------

OUT_OF_RANGE = {
    "negative-seed": ("seed=-1", "seed"),
    "huge-seed": (f"seed={2**70}", "seed"),
    "negative-data-seed": ("benchmark.seed=-3", "benchmark.seed"),
    "lr-nan": ("train.lr=.nan", "train.lr"),
    "lr-inf": ("train.lr=.inf", "train.lr"),
    "lr-zero": ("train.lr=0", "train.lr"),
    "weight-decay-negative": ("train.weight_decay=-1", "train.weight_decay"),
    "epochs-zero": ("train.epochs=0", "train.epochs"),
    "batch-zero": ("train.batch_size=0", "train.batch_size"),
    "threads-zero": ("train.threads=0", "train.threads"),
    "padding-negative": ("train.augment={padding: -1}", "train.augment.padding"),
    "n-train-zero": ("benchmark.options={n_train: 0}", "n_train"),
    "n-train-negative-domain": ("benchmark.options={n_train: [5, -1, 3, 3]}", "n_train"),
    "n-val-negative": ("benchmark.options={n_val: -5}", "n_val"),
    "n-train-huge": (f"benchmark.options={{n_train: {10**12}}}", "n_train"),
    "image-size-zero": ("benchmark.options={image_size: 0}", "image_size"),
    "vit-depth-zero": ("model.spec=vit-d0-w16-p8", "depth"),
    "vit-width-zero": ("model.spec=vit-d1-w0-p8", "width"),
    "vit-patch-zero": ("model.spec=vit-d1-w16-p0", "patch"),
    "vit-heads-zero": ("model.spec=vit-d1-w16-p8-h0", "heads"),
    "vit-patch-too-big": ("model.spec=vit-d1-w16-p32", "patch 32"),
    "vit-patch-not-dividing": ("model.spec=vit-d1-w16-p3", "patch size 3"),
    "vit-heads-not-dividing": ("model.spec=vit-d1-w16-p8-h3", "3 heads"),
    "resnet-depth": ("model.spec=resnet7", "depth 7"),
    "resnet-width-zero": ("model.spec=resnet20-x0", "resnet20-x0"),
    "spec-garbage": ("model.spec=transformer!", "transformer"),
    "weights-nan": ("scalarization.weights=[.nan, 1, 1, 1, 1]", "finite"),
    "weights-negative": ("scalarization.weights=[1, -1, 1, 1, 1]", ">= 0"),
    "weights-too-few": ("scalarization.weights=[1, 2]", "5 objectives"),
    "weights-all-zero": ("scalarization.weights=[0, 0, 0, 0, 0]", "zero"),
    "schedule-no-epoch-0": ("scalarization.schedule=[[1, [1, 1, 1, 1, 1]]]", "epoch 0"),
    "schedule-short": ("scalarization.schedule=[[0, [1, 1]]]", "schedule"),
    "method-unknown": ("method.name=nope", "nope"),
    "method-option": ("method.options={zz: 1}", "zz"),
    "probe-unknown": ("probes={nope: {}}", "nope"),
    "probe-option": ("probes={conflicts: {every: 0}}", "every"),
    "probe-option-unknown": ("probes={conflicts: {evry: 5}}", "'evry'"),
    "name-empty": ("name=' '", "name"),
    "name-hidden": ("name=.hidden", "name"),
    "method-option-nan": ("method.options={c: .nan}", "c is nan"),
    "epochs-huge": (f"train.epochs={2**70}", "train.epochs"),
    "padding-huge": ("train.augment={padding: 100000}", "train.augment.padding"),
    "vit-depth-huge": ("model.spec=vit-d100000000-w16-p8", "depth 100000000"),
    "unicode-digits": ("model.spec=vit-d\uff13-w16-p8", "vit-d"),
    "duplicate-tasks": ("benchmark.tasks=[shape, shape]", "more than once"),
    "schedule-beyond-epochs": ("scalarization.schedule=[[0, [1, 1, 1, 1, 1]], "
                               "[50, [1, 2, 1, 1, 1]]]", "epoch 50"),
    "method-option-unknown": ("method.options={foo: 1}", "'foo'"),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_out_of_range(cli, config_file, tmp_path, case):
    override, culprit = OUT_OF_RANGE[case]
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, override, "--out", tmp_path / "runs")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_weights_whose_sum_overflows_train(cli, config_file, tmp_path):
    big = "scalarization.weights=[1.0e+308, 1.0e+308, 1.0e+308, 1.0e+308, 1.0e+308]"
    result = cli("train", config_file(), *TINY, big, "--out", tmp_path / "runs", "--quiet")
    assert result.status == 0, result.err
    assert "uniform" in result.out  # normalised to the uniform point, named so


def test_non_square_images_for_a_vit(cli, config_file, tmp_path):
    path = tmp_path / "wide.npz"
    n = 40
    np.savez(path, x=np.zeros((n, 3, 16, 24), np.uint8), y_a=np.arange(n) % 2)
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "benchmark.name=npz",
                 f"benchmark.options={{path: {path}}}", "--out", tmp_path / "runs")
    assert_one_line_error(result, "square", "16x24")
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("method,options,culprit", [
    ("pcgrad", "{foo: 1}", "'foo'"),
    ("cagrad", "{c: abc}", "cagrad"),
    ("static", "{foo: 1}", "foo"),
])
def test_method_options(cli, config_file, tmp_path, method, options, culprit):
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, f"method.name={method}", f"method.options={options}",
                 "--out", tmp_path / "runs")
    assert_one_line_error(result, culprit)
    assert "__init__" not in result.err
    assert_unchanged(before, tmp_path)


# -- npz files ---------------------------------------------------------------------------------

def _npz(path, **arrays):
    n = 40
    members = {"x": np.zeros((n, 3, 16, 16), np.uint8), "y_a": np.arange(n) % 2}
    members.update(arrays)
    np.savez(path, **{k: v for k, v in members.items() if v is not None})
    return path


NPZ = {
    "huge-label": ({"y_a": np.array([10**12] + [0] * 39)}, "10000000000"),
    "label-wrapping-int64": ({"y_a": np.array([2**64 - 1] + [0] * 39, np.uint64)}, "y_a"),
    "no-task-name": ({"y_": np.zeros(40, np.int64)}, "y_"),
    "duplicate-domain-names": ({"domain": np.arange(40) % 2,
                                "domain_names": np.array(["a", "a"])}, "repeats"),
    "negative-label": ({"y_a": np.array([-2] + [0] * 39)}, "label -2"),
    "float-class-labels": ({"y_a": np.arange(40.0) % 2}, "integers"),
    "inf-label": ({"y_a": np.array([np.inf] + [0.5] * 39)}, "infinite"),
    "no-label-at-all": ({"y_a": np.full(40, np.nan)}, "no label at all"),
    "no-class-label-at-all": ({"y_a": np.full(40, -1)}, "no label at all"),
    "short-labels": ({"y_a": np.zeros(7, np.int64)}, "y_a"),
    "x-3d": ({"x": np.zeros((40, 16, 16), np.uint8)}, "N×C×H×W"),
    "x-int32": ({"x": np.zeros((40, 3, 16, 16), np.int32)}, "dtype"),
    "x-out-of-range": ({"x": np.full((40, 3, 16, 16), 2.0)}, "[0, 1]"),
    "no-x": ({"x": None}, "no 'x'"),
    "no-labels": ({"y_a": None}, "no label"),
    "bad-split": ({"split": np.full(40, 7)}, "split"),
    "empty-split": ({"split": np.zeros(40, np.int64)}, "empty"),
    "no-train": ({"split": np.ones(40, np.int64)}, "split"),
}


@pytest.mark.parametrize("case", sorted(NPZ))
def test_bad_npz(cli, config_file, tmp_path, case):
    arrays, culprit = NPZ[case]
    path = _npz(tmp_path / "mine.npz", **arrays)
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "benchmark.name=npz",
                 f"benchmark.options={{path: {path}}}", "--out", tmp_path / "runs")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)


def test_npz_member_that_is_not_an_array(cli, tmp_path):
    path = _npz(tmp_path / "mine.npz")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "not an array")
    result = cli("data", "info", "npz", f"path={path}")
    assert_one_line_error(result, "notes.txt", "not a NumPy array")


def test_npz_object_array_is_not_unpickled(cli, tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((4, 3, 16, 16), np.uint8),
             y_a=np.array([object(), 1, 2, 3], dtype=object))
    result = cli("data", "info", "npz", f"path={path}")
    assert_one_line_error(result, "mine.npz", "not a readable")


def test_not_an_npz(cli, tmp_path):
    path = tmp_path / "mine.npz"
    path.write_text("hello")
    result = cli("data", "info", "npz", f"path={path}")
    assert_one_line_error(result, "mine.npz")


def test_mdl_domain_without_training_examples(cli, tmp_path):
    path = tmp_path / "mine.npz"
    n = 40
    domain = np.arange(n) % 2
    split = np.where(domain == 1, 2, np.arange(n) % 3)  # domain 1 only in test
    np.savez(path, x=np.zeros((n, 3, 16, 16), np.uint8), y_a=np.arange(n) % 2,
             domain=domain, split=split, domain_names=np.array(["big", "small"]))
    result = cli("data", "info", "npz", f"path={path}", "--view", "mdl")
    assert_one_line_error(result, "small", "no training examples")


@pytest.mark.parametrize("option,culprit", [("val_fraction=1.5", "val_fraction"),
                                            ("test_fraction=-0.1", "test_fraction")])
def test_npz_fractions(cli, tmp_path, option, culprit):
    path = _npz(tmp_path / "mine.npz")
    result = cli("data", "info", "npz", f"path={path}", option)
    assert_one_line_error(result, culprit)


# -- model info --------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,culprit", [
    (["--image-size", "0"], "(3, 0, 0)"),
    (["--image-size", "-4"], "(3, -4, -4)"),
    (["--channels", "0"], "(0, 32, 32)"),
    (["--classes", "0"], "0 outputs"),
    (["--classes", str(10**12)], "parameters"),
    (["--image-size", "100000"], "parameters"),
    (["--image-size", "abc"], "--image-size"),
])
def test_model_info_impossible_sizes(cli, flags, culprit):
    assert_one_line_error(cli("model", "info", "vit-d3-w48-p4", *flags), culprit)


# -- resume, replay and report on damaged folders -------------------------------------------

@pytest.fixture
def trained(cli, config_file, tmp_path):
    """A finished tiny run: (config, out, run folder)."""
    config = config_file()
    out = tmp_path / "runs"
    result = cli("train", config, *TINY, "name=r", "--out", out, "--quiet")
    assert result.status == 0, result.err
    return config, out, out / "r"


def test_resume_with_checkpoint_from_another_model(cli, trained, tmp_path):
    config, out, run = trained
    (run / "summary.json").unlink()
    other = tmp_path / "other"
    assert cli("train", config, *TINY, "name=r", "model.spec=vit-d1-w32-p8", "--out", other,
               "--quiet").status == 0
    (run / "checkpoint.pt").write_bytes((other / "r" / "checkpoint.pt").read_bytes())
    before = snapshot(run)
    result = cli("train", config, *TINY, "name=r", "--out", out, "--resume")
    assert_one_line_error(result, "checkpoint.pt", "size mismatch")  # what differs, not only
    assert_unchanged(before, run)                                    # PyTorch's first line


def test_resume_with_checkpoint_that_is_a_folder(cli, trained):
    config, out, run = trained
    (run / "summary.json").unlink()
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.pt").mkdir()
    before = snapshot(run)
    result = cli("train", config, *TINY, "name=r", "--out", out, "--resume")
    assert_one_line_error(result, "checkpoint.pt")
    assert_unchanged(before, run)


@pytest.mark.parametrize("damaged,content", [
    ("summary.json", b"{not json"),
    ("config.yaml", b"seed: [\n"),
    ("config.yaml", b"\xff\xfe\x00"),
    ("checkpoint.pt", b"PK\x03\x04 torn"),
])
def test_resume_with_a_corrupt_file(cli, trained, damaged, content):
    config, out, run = trained
    if damaged != "summary.json":
        (run / "summary.json").unlink()
    (run / damaged).write_bytes(content)
    before = snapshot(run)
    result = cli("train", config, *TINY, "name=r", "--out", out, "--resume")
    assert_one_line_error(result, damaged)
    assert_unchanged(before, run)


def test_replay_on_a_folder_that_is_not_a_search(cli, trained):
    _, out, run = trained
    before = snapshot(out)
    assert_one_line_error(cli("replay", run), "not a search")
    assert_unchanged(before, out)


# -- the environment: where the output goes --------------------------------------------------

def test_out_under_a_file(cli, config_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "--out", blocker / "runs")
    assert_one_line_error(result, str(blocker))
    assert_unchanged(before, tmp_path)


def test_out_is_a_file(cli, config_file, tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("x")
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "--out", blocker)
    assert_one_line_error(result, str(blocker))
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("code,words", [(errno.EACCES, "permission"), (errno.EROFS, "read-only"),
                                        (errno.ENOSPC, "space")])
def test_out_not_writable(cli, config_file, tmp_path, monkeypatch, code, words):
    """A folder without permission, on a read-only or a full file system (simulated: tests may
    run as root, where permissions do not bind)."""
    import os
    import pathlib

    real_mkdir = pathlib.Path.mkdir

    def refuse(self, *args, **kwargs):
        if "runs" in self.parts:
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *args, **kwargs)

    config = config_file()
    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "--out", tmp_path / "runs")
    assert_one_line_error(result, "runs", words)
    assert_unchanged(before, tmp_path)


# -- argument errors -------------------------------------------------------------------------

@pytest.mark.parametrize("argv,culprit", [
    (["train", "c.yaml", "--bogus"], "--bogus"),
    (["train"], "config"),
    (["runs"], "dir"),
    (["runs", ".", "--format", "xml"], "xml"),
    (["frobnicate"], "frobnicate"),
    (["search", "c.yaml"], "--out"),
    (["model", "info"], "spec"),
    (["search", "c.yaml", "--out", "o", "--engine", "ray", "--gpus-per-run", "-1"],
     "--gpus-per-run"),
    (["sweep", "c.yaml", "--out", "o", "--engine", "ray", "--cpus-per-run", "0"],
     "--cpus-per-run"),
    (["compare", "c.yaml", "--out", "o", "--connect-timeout", "nan"], "--connect-timeout"),
    (["data", "prepare", "taskonomy", "--root", "no-such-folder"], "no-such-folder"),
])
def test_argument_errors_are_one_line(cli, tmp_path, monkeypatch, argv, culprit):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("seed: 0\n")
    before = snapshot(tmp_path)
    assert_one_line_error(cli(*argv), culprit)
    assert_unchanged(before, tmp_path)


def test_a_full_disk_while_saving_a_checkpoint(cli, config_file, tmp_path, monkeypatch):
    """torch's writer reports a full disk as a RuntimeError; simulated here."""
    import torch

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    config = config_file()
    monkeypatch.setattr(torch, "save", full)
    result = cli("train", config, *TINY, "name=r", "--out", tmp_path / "runs", "--quiet")
    assert_one_line_error(result, "checkpoint.pt", "disk full")


def test_a_full_disk_while_appending_names_the_file(cli, config_file, tmp_path, monkeypatch):
    import os

    from scalarize import files

    real_fsync = os.fsync

    def full(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "metrics.jsonl":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    config = config_file()
    monkeypatch.setattr(files.os, "fsync", full)
    result = cli("train", config, *TINY, "name=r", "--out", tmp_path / "runs", "--quiet")
    assert_one_line_error(result, "metrics.jsonl", "space")
