"""DomainNet reader against a tiny fixture in the official layout (JPEG folders, split lists)."""

import numpy as np
import pytest
from PIL import Image

from scalarize.benchmarks import load_benchmark
from scalarize.errors import ScalarizeError

CLASSES = {"aircraft_carrier": 0, "zebra": 344}


def _write(root, domain, n_train=5, n_test=2, colour=(200, 30, 30)):
    for split, n in [("train", n_train), ("test", n_test)]:
        lines = []
        for i in range(n):
            cls, label = list(CLASSES.items())[i % 2]
            rel = f"{domain}/{cls}/{domain}_{split}_{i:03d}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            image = np.zeros((40, 60, 3), np.uint8)
            image[:, 10:50] = colour  # the centre 40×40 square is all colour
            Image.fromarray(image).save(root / rel, quality=95)
            lines.append(f"{rel} {label}")
        (root / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")


def test_two_domains_share_one_345_class_label(tmp_path):
    _write(tmp_path, "real", colour=(200, 30, 30))
    _write(tmp_path, "sketch", n_train=10, colour=(30, 30, 200))
    data = load_benchmark("domainnet", view="mdl", root=tmp_path, domains=["real", "sketch"],
                          image_size=16, val_fraction=0.2)
    assert data.domains == ("real", "sketch") and data.tasks[0].num_classes == 345
    assert np.bincount(data.splits["train"].domain).tolist() == [4, 8]
    assert np.bincount(data.splits["val"].domain).tolist() == [1, 2]
    test = data.splits["test"]
    assert test.labels["label"].tolist() == [0, 344, 0, 344]
    sketch = test.x[test.domain == 1]
    assert sketch.shape == (2, 3, 16, 16)
    assert np.abs(sketch.reshape(2, 3, -1).mean(axis=2) - [30, 30, 200]).max() < 6
    assert (tmp_path / ".scalarize" / "domainnet-sketch-test-16.npy").is_file()


def test_errors(tmp_path):
    _write(tmp_path, "real")
    with pytest.raises(ScalarizeError, match="unknown DomainNet domain"):
        load_benchmark("domainnet", view="mdl", root=tmp_path, domains=["photo"])
    with pytest.raises(ScalarizeError, match=r"clipart_train\.txt is missing"):
        load_benchmark("domainnet", view="mdl", root=tmp_path, domains=["real", "clipart"])
    lst = tmp_path / "real_test.txt"
    lst.write_text(lst.read_text() + "real/zebra/x.jpg 345\n")
    with pytest.raises(ScalarizeError, match="label 345 is out of range"):
        load_benchmark("domainnet", view="mdl", root=tmp_path, domains=["real"])
    lst.write_text("real/zebra/missing.jpg 3\n")
    with pytest.raises(ScalarizeError, match=r"missing\.jpg is missing"):
        load_benchmark("domainnet", view="mdl", root=tmp_path, domains=["real"], cache=False)
