"""--smoke: fixture written once, overrides in the documented order."""

from pathlib import Path

from scalarize.config import load_config
from scalarize.smoke import CPU_RUN, fixture_options, smoke_overrides

CONFIGS = Path(__file__).parent.parent / "configs"


def test_fixture_is_written_once_and_read_back():
    first = fixture_options("taskonomy")
    root = Path(first["root"])
    stamp = (root / "train_val_test_fixture.csv").stat().st_mtime_ns
    again = fixture_options("taskonomy")
    assert again == first and first["split_file"] == "train_val_test_fixture.csv"
    assert (root / "train_val_test_fixture.csv").stat().st_mtime_ns == stamp
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_overrides_cpu_then_fixture_then_preset_then_user():
    path = CONFIGS / "paper_pbt_celeba.yaml"
    overrides = smoke_overrides(path)
    assert overrides[:len(CPU_RUN)] == CPU_RUN
    assert overrides[-2:] == ["model.spec=vit-d1-w16-p4-h1", overrides[-1]]
    config = load_config(path.with_name("shapes_mtl.yaml"), [
        "benchmark.name=celeba", *overrides[:-1], "train.epochs=3"])
    assert config.train.device == "cpu" and config.train.epochs == 3
    assert config.benchmark.options["image_size"] == 16
    assert config.model.spec == "vit-d1-w16-p4-h1"


def test_built_in_benchmarks_keep_their_data():
    overrides = smoke_overrides(CONFIGS / "shapes_mtl.yaml")
    assert overrides == CPU_RUN
