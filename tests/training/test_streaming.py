"""Training from streamed splits keeps every promise of the in-memory path: the same batches in
the same order, the same numbers, domain proportions, resume, the held-out split, augmentation,
any number of workers."""

import numpy as np
import pytest
import torch

from scalarize.benchmarks import Dataset, StreamSplit
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.search.member import holdout_split
from scalarize.training import Callback, Trainer, load_data
from scalarize.training.data import LoaderSplit, TensorSplit, split_stats
from scalarize.training.sampling import DomainMixtureSampler, ShuffledSampler
from tests.conftest import tiny_config

MDL = ("benchmark.view=mdl", "model.spec=vit-d1-w16-p8",
       "benchmark.options={n_train: [48, 24, 12, 12], n_val: 8, n_test: 8, image_size: 16}")


class Items(torch.utils.data.Dataset):
    """An in-memory split served item by item, as a user's dataset would; ``scale`` turns the
    images into floats (taken as they are)."""

    def __init__(self, split, scale=None):
        self.split, self.scale = split, scale

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        x = self.split.x[i]
        x = x if self.scale is None else torch.from_numpy(x).float() * self.scale
        return x, {k: v[i] for k, v in self.split.labels.items()}


class Broken(Items):
    def __getitem__(self, i):
        raise ScalarizeError(f"image {i} is corrupt")


def streamed(data, kind=Items, **kw):
    """``data`` with every split streamed from an item-by-item dataset."""
    splits = {k: StreamSplit(kind(s, **kw), s.domain) for k, s in data.splits.items()}
    return Dataset(data.name, data.view, data.tasks, splits, data.domains, data.info)


def test_streamed_batches_equal_in_memory_batches_in_the_same_order():
    data = load_data(tiny_config())
    mean, std = split_stats(data.splits["train"])
    stream = streamed(data)
    assert all(np.array_equal(a, b) for a, b in zip(split_stats(stream.splits["train"]),
                                                    (mean, std), strict=True))
    cpu = torch.device("cpu")
    memory = TensorSplit(data.splits["train"], cpu, mean, std)
    loader = LoaderSplit(stream.splits["train"], cpu, mean, std)
    sampler = ShuffledSampler(len(memory), 32, seed=0)
    for epoch in (0, 1):
        pairs = zip(memory.batches(sampler.iter_epoch(epoch)),
                    loader.batches(sampler.iter_epoch(epoch)), strict=True)
        for a, b in pairs:
            assert torch.equal(a.x, b.x) and a.labels.keys() == b.labels.keys()
            assert all(torch.equal(a.labels[k], b.labels[k]) for k in a.labels)
    evals = zip(memory.sequential(40), loader.sequential(40), strict=True)
    assert all(torch.equal(a.x, b.x) for a, b in evals)
    index = torch.tensor([5, 3, 90])
    assert torch.equal(memory.batch(index).x, loader.batch(index).x)


@pytest.mark.parametrize("overrides", [("train.augment={padding: 2, flip: true}",), MDL])
def test_a_streamed_run_equals_the_same_data_in_memory(overrides):
    config = tiny_config(*overrides, "train.workers=0")
    data = load_data(config)
    memory = Trainer(config, data=data, progress=False)
    a = memory.fit()  # before the next trainer seeds torch's (shared) RNG
    stream = Trainer(config, data=streamed(data), progress=False)
    assert isinstance(stream.splits["train"], LoaderSplit)
    b = stream.fit()
    for x, y in zip(memory.history, stream.history, strict=True):
        assert list(y["train_loss"].values()) == pytest.approx(list(x["train_loss"].values()))
        assert list(y["val_loss"].values()) == pytest.approx(list(x["val_loss"].values()))
    assert b.test.acc == a.test.acc
    assert list(b.test.loss.values()) == pytest.approx(list(a.test.loss.values()))


def test_streamed_mdl_batches_follow_the_domain_proportions():
    data = streamed(load_data(tiny_config(*MDL)))
    train = data.splits["train"]
    mean, std = split_stats(train)
    loader = LoaderSplit(train, torch.device("cpu"), mean, std)
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    sampler = DomainMixtureSampler(train.domain, weights, batch_size=64, seed=0)
    counts = np.zeros(4)
    for epoch in range(10):
        for batch in loader.batches(sampler.iter_epoch(epoch)):
            counts += np.bincount(batch.domain.numpy(), minlength=4)
            # each batch's domain index is its images' (domain d: images of that domain)
            assert torch.equal(batch.domain, torch.from_numpy(train.domain)[
                _rows(train, batch)])
    assert counts / counts.sum() == pytest.approx(weights, abs=0.03)


def _rows(split, batch):
    """The row of each image of ``batch`` in ``split`` (the fixture's images are distinct)."""
    rows = {split[i][0].tobytes(): i for i in range(len(split))}
    mean, std = split_stats(split)
    raw = (batch.x * torch.as_tensor(std).view(1, -1, 1, 1)
           + torch.as_tensor(mean).view(1, -1, 1, 1)) * 255
    return torch.tensor([rows[x.round().to(torch.uint8).numpy().tobytes()] for x in raw])


def test_the_streamed_order_is_a_function_of_seed_and_epoch():
    def labels(config, epoch):
        trainer = Trainer(config, data=streamed(load_data(config)), progress=False)
        train = trainer.splits["train"]
        return [b.labels["shape"].tolist() for b in
                train.batches(trainer.sampler.iter_epoch(epoch))]

    config = tiny_config("train.workers=0")
    assert labels(config, 1) == labels(config, 1)
    assert labels(config, 1) != labels(config, 0)
    assert labels(config, 1) != labels(tiny_config("train.workers=0", "seed=1"), 1)


def test_workers_do_not_change_the_numbers():
    config = tiny_config("train.augment={padding: 2, flip: true}", "train.epochs=2")
    data = streamed(load_data(config))
    runs, summaries = [], []
    for workers in (0, 2):  # built and trained one after the other: they share torch's RNG
        train = config.train.model_copy(update={"workers": workers})
        runs.append(Trainer(config.model_copy(update={"train": train}), data=data,
                            progress=False))
        summaries.append(runs[-1].fit())
    assert isinstance(runs[1].splits["train"], LoaderSplit) and runs[1].splits["train"].workers
    assert runs[0].history[-1]["train_loss"] == runs[1].history[-1]["train_loss"]
    assert summaries[0].test == summaries[1].test


class _Kill(Callback):
    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_of_a_streamed_run_equals_an_uninterrupted_one(tmp_path, workers):
    config = tiny_config("train.epochs=3", f"train.workers={workers}", *MDL,
                         "train.augment={padding: 0, flip: true}")
    data = streamed(load_data(config))
    whole = train_run(config, tmp_path / "a", data=data, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "b", data=data, callbacks=[_Kill()], progress=False)
    run = RunDir(tmp_path / "b" / whole.run)
    assert not run.is_complete
    resumed = train_run(config, tmp_path / "b", data=data, resume=True, progress=False)
    assert resumed.test == whole.test
    assert [r.val_loss for r in run.read_metrics()] == \
        [r.val_loss for r in RunDir(tmp_path / "a" / whole.run).read_metrics()]


def test_holdout_split_of_a_streamed_split():
    config = tiny_config(*MDL)
    memory = load_data(config)
    data = streamed(memory)
    split = holdout_split(data, 0.25, seed=0)
    same = holdout_split(memory, 0.25, seed=0)
    val, train = split.splits["val"], split.splits["train"]
    assert isinstance(val, StreamSplit) and len(val) + len(train) == 96
    assert np.bincount(val.domain).tolist() == [12, 6, 3, 3]
    assert split.splits["test"] is data.splits["test"]
    assert np.array_equal(np.stack([val[i][0] for i in range(len(val))]), same.splits["val"].x)
    trainer = Trainer(config, data=split, progress=False)
    assert trainer.train_epochs(1)[0]["val_avg_acc"] >= 0


def test_augmentation_acts_on_streamed_batches():
    plain = tiny_config("train.workers=0")
    data = streamed(load_data(plain))
    torch.manual_seed(0)
    trainer = Trainer(tiny_config("train.workers=0", "train.augment={padding: 4, flip: true}"),
                      data=data, progress=False)
    batch = next(trainer.splits["train"].batches([torch.arange(32)]))
    x = batch.x.clone()
    trainer.train_batch(batch)
    assert not torch.equal(batch.x, x)  # cropped and flipped in place of the batch's images
    a = Trainer(plain, data=data, progress=False).fit()
    b = Trainer(tiny_config("train.workers=0", "train.augment={padding: 4, flip: true}"),
                data=data, progress=False).fit()
    assert a.test.loss != b.test.loss


def test_float_images_are_taken_as_they_are():
    data = streamed(load_data(tiny_config()), scale=1 / 255)
    train = data.splits["train"]
    mean, std = split_stats(train)
    assert mean.tolist() == [0.0] * 3 and std.tolist() == [1.0] * 3
    loader = LoaderSplit(train, torch.device("cpu"), mean, std)
    batch = loader.batch(torch.tensor([0, 1]))
    expected = torch.from_numpy(load_data(tiny_config()).splits["train"].x[:2]).float() * (1 / 255)
    assert torch.equal(batch.x, expected)


def test_a_data_error_in_a_worker_is_one_line():
    config = tiny_config("train.workers=1")
    trainer = Trainer(config, data=streamed(load_data(config)), progress=False)
    trainer.splits["train"].split.dataset = Broken(load_data(config).splits["train"])
    trainer.splits["train"]._loader = None
    with pytest.raises(ScalarizeError) as caught:
        trainer.fit()
    assert str(caught.value).startswith("image ") and str(caught.value).endswith("is corrupt")
    assert "\n" not in str(caught.value)


def test_a_loader_split_serves_one_pass_at_a_time():
    data = streamed(load_data(tiny_config()))
    mean, std = split_stats(data.splits["train"])
    loader = LoaderSplit(data.splits["train"], torch.device("cpu"), mean, std)
    first = loader.batches([torch.arange(4), torch.arange(4, 8)])
    next(first)
    with pytest.raises(RuntimeError, match="one pass at a time"):
        next(loader.batches([torch.arange(2)]))
    first.close()  # an abandoned pass frees the loader
    assert [len(b) for b in loader.batches([torch.arange(3)])] == [3]
