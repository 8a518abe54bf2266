"""The ``image_files`` benchmark: a folder of PNGs with labels.csv per split, read lazily; it
trains, resumes and searches through the command line."""

import json

import numpy as np
import pytest
from PIL import Image

from scalarize.benchmarks import StreamSplit, load_benchmark
from scalarize.benchmarks.image_files import ImageFiles, write_image_files
from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.runs import RunDir, SearchDir
from scalarize.training import Trainer


@pytest.fixture
def images(tmp_path):
    return write_image_files(tmp_path / "images", n_train=40, n_test=12, domains=("a", "b"))


def test_items_are_the_pngs_as_uint8_chw_with_their_labels(images, tmp_path):
    files = ImageFiles(images["root"], "train", images["kinds"])
    assert len(files) == 40
    image, targets = files[3]
    png = np.asarray(Image.open(tmp_path / "images" / "train" / "images" / "00003.png"))
    assert image.dtype == np.uint8 and np.array_equal(image, png.transpose(2, 0, 1))
    row = (tmp_path / "images" / "train" / "labels.csv").read_text().splitlines()[4].split(",")
    assert targets["label"] == int(row[1])
    assert targets["brightness"] == pytest.approx(float(row[2]))
    assert targets["label"].dtype == np.int64 and targets["brightness"].dtype == np.float32


def test_mtl_view_kinds_classes_and_a_seeded_val(images):
    data = load_benchmark("image_files", **images)
    assert data.objectives == ("label", "brightness")
    label, brightness = data.tasks
    assert (label.kind, label.num_classes) == ("classification", 4)
    assert brightness.kind == "regression" and brightness.options == {"dense": False}
    assert all(isinstance(s, StreamSplit) for s in data.splits.values())
    assert (len(data.splits["train"]), len(data.splits["val"]), len(data.splits["test"])) == \
        (36, 4, 12)
    assert data.image_shape == (3, 8, 8) and data.splits["train"].domain is None

    def val(seed):
        part = load_benchmark("image_files", seed=seed, **images).splits["val"]
        return [part[i][0].tobytes() for i in range(len(part))]

    assert val(0) == val(0) and val(0) != val(1)


def test_a_val_folder_is_used_when_there_is_one(tmp_path):
    options = write_image_files(tmp_path, n_train=10, n_val=6, n_test=4)
    data = load_benchmark("image_files", **options)
    assert len(data.splits["train"]) == 10 and len(data.splits["val"]) == 6
    assert data.info["split"] == "from the val folder"


def test_mdl_view_by_the_domain_column(images):
    data = load_benchmark("image_files", view="mdl", tasks=["label"], **images)
    assert data.objectives == ("a", "b")
    assert np.bincount(data.splits["test"].domain).tolist() == [6, 6]
    assert sum(data.summary()["train_per_domain"].values()) == 36


def test_greyscale_pngs_have_one_channel(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / split).mkdir()
        Image.fromarray(np.full((6, 5), 7, np.uint8)).save(tmp_path / split / "g.png")
        (tmp_path / split / "labels.csv").write_text("file,y\ng.png,1\n")
    data = load_benchmark("image_files", root=tmp_path)
    assert data.splits["test"][0][0].shape == (1, 6, 5)
    assert data.tasks[0].num_classes == 2


def _break(root, split, text):
    (root / split / "labels.csv").write_text(text)


@pytest.mark.parametrize(("fault", "message"), [
    ("no-root", "no such folder"),
    ("no-test", "test/labels.csv: no such file"),
    ("missing-file", "00099.png: no such image file"),
    ("word-label", "column 'label' holds 'cat' at row 3; declare"),
    ("no-file-column", "no 'file' column"),
    ("unknown-kind", "kinds names ['age']"),
    ("mdl-without-domain", "needs a domain column"),
    ("unreadable-image", "not a readable image"),
])
def test_mistakes_are_one_clear_line(tmp_path, fault, message):
    options = write_image_files(tmp_path / "d", n_train=6, n_test=4)
    root = tmp_path / "d"
    view = "mtl"
    if fault == "no-root":
        options["root"] = str(tmp_path / "nowhere")
    elif fault == "no-test":
        (root / "test" / "labels.csv").unlink()
    elif fault == "missing-file":
        _break(root, "test", "file,label,brightness\nimages/00099.png,1,0.5\n")
    elif fault == "word-label":
        _break(root, "test", "file,label,brightness\nimages/00000.png,1,0.5\n"
               "images/00001.png,cat,0.5\n")
    elif fault == "no-file-column":
        _break(root, "test", "image,label\nimages/00000.png,1\n")
    elif fault == "unknown-kind":
        options["kinds"] = {"age": "regression"}
    elif fault == "mdl-without-domain":
        view = "mdl"
    elif fault == "unreadable-image":
        (root / "test" / "images" / "00000.png").write_bytes(b"not a png")
    with pytest.raises(ScalarizeError) as caught:
        data = load_benchmark("image_files", view=view, tasks=None, **options)
        data.splits["test"][0]  # images are read when asked for
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _cli(*argv):
    return main([str(a) for a in argv])


TRAIN = ["model.spec=vit-d1-w16-p8", "train.batch_size=16", "train.device=cpu",
         "train.workers=0", "benchmark.name=image_files"]


def test_train_and_resume_through_the_cli(images, tmp_path, capsys, monkeypatch):
    args = [*TRAIN, f"benchmark.options={json.dumps(images)}", "train.epochs=3",
            "train.augment={padding: 1, flip: true}", "--quiet"]
    config = tmp_path / "c.yaml"
    config.write_text("seed: 0\n")
    assert _cli("train", config, *args, "--out", tmp_path / "whole") == 0
    assert "test avg_acc=" in capsys.readouterr().out
    [whole] = [RunDir(p) for p in (tmp_path / "whole").iterdir()]

    run_epoch = Trainer._run_epoch

    def stop_after_two(trainer):
        run_epoch(trainer)
        if trainer.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", stop_after_two)
    assert _cli("train", config, *args, "--out", tmp_path / "part") == 130
    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)
    run = RunDir(tmp_path / "part" / whole.path.name)
    assert not run.is_complete and len(run.read_metrics()) == 2
    assert _cli("train", config, *args, "--out", tmp_path / "part", "--resume") == 0
    assert [r.val_loss for r in run.read_metrics()] == [r.val_loss for r in whole.read_metrics()]
    assert run.read_summary().test == whole.read_summary().test


def test_pbt_search_on_image_files_ranks_on_the_held_out_split(images, tmp_path, capsys):
    config = tmp_path / "s.yaml"
    config.write_text("seed: 0\nsearch: {strategy: pbt, population: 3, interval: 1}\n")
    out = tmp_path / "search"
    assert _cli("search", config, *TRAIN, f"benchmark.options={json.dumps(images)}",
                "train.epochs=2", "train.lr=3e-3", "--out", out, "--quiet") == 0
    assert "best member" in capsys.readouterr().out
    events = [e.dump() for e in SearchDir(out).read_events()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 3 * 2 and all(0 <= e["val_avg_acc"] <= 1 for e in epochs)


def test_empty_cells_are_missing_labels(tmp_path):
    """Partial labels: a gap in labels.csv is no label for that task (-1 for a class, NaN for a
    float); other negative labels are still refused."""
    options = write_image_files(tmp_path / "d", n_train=6, n_test=4)
    root = tmp_path / "d"
    _break(root, "train", "file,label,brightness\nimages/00000.png,1,\nimages/00001.png,,0.5\n"
           "images/00002.png,-1,nan\nimages/00003.png,2,0.25\n")
    files = ImageFiles(str(root), "train", options["kinds"])
    assert files.labels["label"].tolist() == [1, -1, -1, 2]
    assert np.isnan(files.labels["brightness"][[0, 2]]).all()
    assert files.labels["brightness"][[1, 3]].tolist() == [0.5, 0.25]
    _break(root, "train", "file,label,brightness\nimages/00000.png,-2,0.5\n")
    with pytest.raises(ScalarizeError, match="holds -2 at row 2"):
        ImageFiles(str(root), "train", options["kinds"])
