import torch

from scalarize.training import Trainer, train_run
from scalarize.training.augment import Augment
from tests.conftest import tiny_config


def test_crop_shifts_and_flip_mirrors():
    x = torch.arange(4 * 2 * 6 * 6, dtype=torch.float32).view(4, 2, 6, 6) + 1
    torch.manual_seed(0)
    out = Augment(padding=2, flip=False)(x)
    assert out.shape == x.shape
    for i in range(4):  # each image is a shifted window of its zero-padded self
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = Augment(padding=0, flip=True)(x)
    for i in range(4):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))


def test_augmentation_is_seeded_and_changes_training(tmp_path):
    config = tiny_config("train.augment={padding: 2, flip: true}", "train.epochs=2")
    a = Trainer(config, progress=False).fit()
    b = Trainer(config, progress=False).fit()
    assert a["test"] == b["test"]
    plain = Trainer(tiny_config("train.epochs=2"), progress=False).fit()
    assert plain["test"]["loss"] != a["test"]["loss"]
    whole = train_run(config, tmp_path / "w", progress=False)
    assert whole["test"] == a["test"]
