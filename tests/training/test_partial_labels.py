"""Partial labels end to end: a data set with 50% of one task's labels removed (``-1``) and a
quarter of another's (NaN) trains from ``.npz``, from streamed items and from arrays, with
static scalarization, a Jacobian method (upgrad), a loss-based one (dwa) and the conflict
probe; each task's loss and metrics are those of its labelled examples (checked by hand); a
batch without a task's label gives no gradient from it; runs resume exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scalarize.api as sz
from scalarize.benchmarks import load_benchmark
from scalarize.config import load_config
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.probes import build_probes
from scalarize.runs import RunDir
from scalarize.training import Callback, Trainer

N, SPLIT = 96, np.array([0] * 64 + [1] * 16 + [2] * 16)  # train, val, test
RECIPE = ["model.spec=vit-d1-w16-p4", "train.epochs=2", "train.batch_size=16",
          "train.warmup_epochs=0", "train.device=cpu"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _arrays(labelled_digits: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
    """Images, a 3-class ``digit`` with only ``labelled_digits`` of its labels kept (the rest
    -1) and a per-image ``size`` with a quarter of its values NaN."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, 3, 8, 8), dtype=np.uint8)
    brightness = x[:, 0].mean(axis=(1, 2))
    digit = np.argsort(np.argsort(brightness)) * 3 // N  # learnable: tertiles, classes 0..2
    keep = rng.permutation(N)[:round(N * labelled_digits)]
    digit = np.where(np.isin(np.arange(N), keep), digit, -1)
    size = x[:, 1].mean(axis=(1, 2)).astype(np.float32) / 255
    size[rng.permutation(N)[:N // 4]] = np.nan
    return {"x": x, "y_digit": digit, "y_size": size}


def _tasks():
    return [sz.task("digit", classes=3), sz.task("size", kind="regression", dense=False)]


def _from_arrays(arrays):
    part = {name: (arrays["x"][i == SPLIT], {"digit": arrays["y_digit"][i == SPLIT],
                                             "size": arrays["y_size"][i == SPLIT]})
            for i, name in enumerate(("train", "val", "test"))}
    return sz.from_arrays(_tasks(), train=part["train"], val=part["val"], test=part["test"])


class _Items(torch.utils.data.Dataset):
    """One split's examples as streamed items: ``-1`` and ``nan`` labels as they are."""

    def __init__(self, arrays, rows):
        self.arrays, self.rows = arrays, np.flatnonzero(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        r = self.rows[i]
        return self.arrays["x"][r], {"digit": int(self.arrays["y_digit"][r]),
                                     "size": float(self.arrays["y_size"][r])}


def _streamed(arrays):
    return sz.from_datasets(_tasks(), train=_Items(arrays, SPLIT == 0),
                            val=_Items(arrays, SPLIT == 1), test=_Items(arrays, SPLIT == 2))


def _npz(arrays, tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, split=SPLIT, **arrays)
    return load_benchmark("npz", path=path)


def _data(source, arrays, tmp_path):
    return {"arrays": _from_arrays, "stream": _streamed}[source](arrays) if source != "npz" \
        else _npz(arrays, tmp_path)


def _config(*overrides):
    return load_config(None, [*RECIPE, *overrides])


def _by_hand(trainer: Trainer, arrays) -> dict[str, float]:
    """The test split's digit loss and accuracy and size L1, over labelled examples only."""
    test = trainer.splits["test"]
    trainer.model.eval()
    with torch.no_grad():
        batch = test.batch(torch.arange(len(test)))
        features = trainer.model(batch.x)
        logits = trainer.model.heads["digit"](features)
        size = trainer.model.heads["size"](features)[:, 0]
    digit = torch.from_numpy(arrays["y_digit"][SPLIT == 2])
    value = torch.from_numpy(arrays["y_size"][SPLIT == 2])
    has_digit, has_size = digit >= 0, ~value.isnan()
    return {"digit_loss": float(F.cross_entropy(logits[has_digit], digit[has_digit])),
            "digit_acc": float((logits.argmax(1) == digit)[has_digit].double().mean()),
            "size_l1": float((size - value)[has_size].abs().double().mean())}


@pytest.mark.parametrize("method", ["static", "upgrad", "dwa"])
@pytest.mark.parametrize("source", ["npz", "stream", "arrays"])
def test_half_the_labels_train_and_metrics_count_labelled_examples(source, method, tmp_path):
    arrays = _arrays()
    data = _data(source, arrays, tmp_path)
    config = _config(f"method.name={method}", "probes={conflicts: {every: 2}}")
    trainer = Trainer(config, data=data, progress=False, callbacks=build_probes(config.probes))
    summary = trainer.fit()
    assert all(np.isfinite(v) for v in summary.test.loss.values())
    hand = _by_hand(trainer, arrays)
    assert summary.test.loss["digit"] == pytest.approx(hand["digit_loss"], rel=1e-5)
    assert summary.test.acc["digit"] == pytest.approx(hand["digit_acc"], abs=1e-12)
    assert summary.test.metrics["size"]["l1"] == pytest.approx(hand["size_l1"], rel=1e-5)
    records = trainer.callbacks[0].records
    assert records and all(np.isfinite(r.norms).all() for r in records)


def test_the_three_sources_give_the_same_numbers(tmp_path):
    arrays = _arrays()
    config = _config()
    tests = []
    for source in ("npz", "stream", "arrays"):
        tests.append(Trainer(config, data=_data(source, arrays, tmp_path), progress=False)
                     .fit().test)
    assert tests[0] == tests[1] == tests[2]


def test_a_batch_without_a_task_gives_no_gradient_and_one_fewer_row(tmp_path):
    arrays = _arrays()
    trainer = Trainer(_config("method.name=upgrad"), data=_from_arrays(arrays),
                      progress=False)
    train = trainer.splits["train"]
    unlabelled = torch.from_numpy(np.flatnonzero(arrays["y_digit"][SPLIT == 0] < 0)[:8])
    batch = train.batch(unlabelled)
    _, per_example = trainer._forward(batch)
    losses, counts = per_example.mean_losses()
    assert counts.tolist() == [0.0, float(per_example.mask[1].sum())]
    assert losses[0].item() == 0.0
    params = [p for p in trainer.model.parameters()]
    grads = torch.autograd.grad(losses[0], params, retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    rows: list[int] = []
    trainer.method.aggregator.register_forward_pre_hook(
        lambda module, args: rows.append(args[0].shape[0]))
    trainer.train_batch(train.batch(unlabelled))
    assert all(p.grad is None or not p.grad.any()
               for p in trainer.model.heads["digit"].parameters())
    assert all(p.grad is not None and p.grad.any()
               for p in trainer.model.heads["size"].parameters())
    labelled = np.flatnonzero(arrays["y_digit"][SPLIT == 0] >= 0)[:8]
    trainer.train_batch(train.batch(torch.from_numpy(labelled)))
    assert rows == [1, 2]


class _Counts(Callback):
    """The labelled digits of every training batch."""

    def __init__(self):
        self.digits: list[int] = []

    def on_losses(self, trainer, losses, per_example, ctx):
        self.digits.append(int(ctx.counts[0]))


class _Kill(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt


@pytest.mark.parametrize("method", ["upgrad", "dwa", "famo", "gradnorm", "mgda_ub", "uw"])
def test_sparse_labels_resume_exactly(method, tmp_path):
    """One digit label in eight: most batches have none. Killed in its second epoch and
    resumed, a run ends as an uninterrupted one does."""
    data = _from_arrays(_arrays(labelled_digits=0.125))
    config = _config(f"method.name={method}", "train.epochs=3")
    counts = _Counts()
    whole = train_run(config, tmp_path / "a", data=data, callbacks=[counts], progress=False)
    assert 0 in counts.digits and max(counts.digits) > 0  # batches with and without digits
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "b", data=data, callbacks=[_Kill()], progress=False)
    resumed = train_run(config, tmp_path / "b", resume=True, data=data, progress=False)
    assert resumed.test == whole.test
    assert np.isfinite(list(whole.test.loss.values())).all()
    (a,), (b,) = ([RunDir(p) for p in (tmp_path / k).iterdir()] for k in "ab")
    strip = ("epoch_seconds", "step_seconds")
    assert ([{k: v for k, v in r.dump().items() if k not in strip} for r in a.read_metrics()]
            == [{k: v for k, v in r.dump().items() if k not in strip} for r in b.read_metrics()])


def test_a_bad_marker_is_refused_in_one_line(tmp_path):
    arrays = _arrays()
    arrays["y_digit"][0] = -2
    with pytest.raises(ScalarizeError, match=r"task 'digit' has 3 classes but a label -2"):
        _from_arrays(arrays)
    with pytest.raises(ScalarizeError, match=r"'y_digit' holds label -2"):
        _npz(arrays, tmp_path)


@pytest.mark.parametrize("method", ["static", "upgrad"])
def test_multi_domain_data_with_missing_labels(method):
    """The multi-domain view: an example counts for its domain's objective only when labelled;
    a batch without any label weighs nothing (data resampling) and stays finite."""
    arrays = _arrays()
    x, digit = arrays["x"], arrays["y_digit"]
    def rows(i, k):  # split i, domain k (every other image)
        return np.equal(SPLIT, i) & (np.arange(N) % 2 == k)

    split = {name: {d: (x[rows(i, k)], digit[rows(i, k)]) for k, d in enumerate(("a", "b"))}
             for i, name in enumerate(("train", "val", "test"))}
    data = sz.from_arrays([sz.task("digit", classes=3)], **split)
    trainer = Trainer(_config(f"method.name={method}", "scalarization.mdl_mode=resample"),
                      data=data, progress=False)
    train = trainer.splits["train"]
    unlabelled = torch.from_numpy(np.flatnonzero(train.labels["digit"].numpy() < 0)[:6])
    losses, loss = trainer.train_batch(train.batch(unlabelled))
    assert losses.tolist() == [0.0, 0.0] and loss.item() == 0.0
    summary = trainer.fit()
    assert np.isfinite(list(summary.test.loss.values())).all()
    test = trainer.splits["test"]
    with torch.no_grad():
        batch = test.batch(torch.arange(len(test)))
        features = trainer.model(batch.x)
    for d, name in enumerate(("a", "b")):
        rows = (batch.domain == d) & (batch.labels["digit"] >= 0)
        logits = trainer.model.heads[name](features)[rows]
        right = (logits.argmax(1) == batch.labels["digit"][rows]).double().mean()
        assert summary.test.acc[name] == pytest.approx(float(right), abs=1e-12)
