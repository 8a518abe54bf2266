import torch

from scalarize.launch import train_run
from scalarize.training import Trainer
from scalarize.training.augment import Augment
from tests.conftest import tiny_config


def test_crop_shifts_and_flip_mirrors():
    x = torch.arange(4 * 2 * 6 * 6, dtype=torch.float32).view(4, 2, 6, 6) + 1
    torch.manual_seed(0)
    out, _ = Augment(padding=2, flip=False)(x)
    assert out.shape == x.shape
    for i in range(4):  # each image is a shifted window of its zero-padded self
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped, _ = Augment(padding=0, flip=True)(x)
    for i in range(4):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))


def test_dense_targets_flip_with_their_images():
    from scalarize.training.task_kinds import build_kind

    x = torch.arange(8 * 1 * 3 * 5, dtype=torch.float32).view(8, 1, 3, 5)
    normals = torch.randint(0, 256, (8, 3, 3, 5), dtype=torch.uint8)
    classes = torch.randint(0, 4, (8, 3, 5), dtype=torch.uint8)
    kind = build_kind("normals", {})
    seg = build_kind("segmentation", {"classes": 4})
    torch.manual_seed(1)
    out, moved = Augment(padding=0, flip=True)(
        x, {"normal": (normals, kind.flip), "seg": (classes, seg.flip)})
    mirrored = [i for i in range(8) if not torch.equal(out[i], x[i])]
    assert 0 < len(mirrored) < 8
    for i in range(8):
        if i in mirrored:
            assert torch.equal(moved["seg"][i], classes[i].flip(-1))
            value, _ = kind.decode(moved["normal"][i:i + 1])
            original, _ = kind.decode(normals[i:i + 1])
            expected = original.flip(-1) * torch.tensor([-1.0, 1.0, 1.0]).view(1, 3, 1, 1)
            assert torch.allclose(value, expected, atol=1e-6)  # x axis negated
        else:
            assert torch.equal(moved["seg"][i], classes[i])
            assert torch.equal(moved["normal"][i], normals[i])


def test_augmentation_is_seeded_and_changes_training(tmp_path):
    config = tiny_config("train.augment={padding: 2, flip: true}", "train.epochs=2")
    a = Trainer(config, progress=False).fit()
    b = Trainer(config, progress=False).fit()
    assert a.test == b.test
    plain = Trainer(tiny_config("train.epochs=2"), progress=False).fit()
    assert plain.test.loss != a.test.loss
    whole = train_run(config, tmp_path / "w", progress=False)
    assert whole.test == a.test
