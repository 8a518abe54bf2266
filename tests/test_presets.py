"""Every preset in configs/ validates and names models and benchmarks that exist (the data of
the paper's presets is not here; their readers are tested on fixtures)."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from scalarize.benchmarks import BENCHMARKS
from scalarize.cli import main
from scalarize.config import load_config, read_yaml
from scalarize.models import build_model
from scalarize.search.spec import load_search_config
from scalarize.studies.compare import load_compare_config
from scalarize.studies.sweep import load_sweep_config

CONFIGS_DIR = Path(__file__).parent.parent / "configs"
CONFIGS = sorted(CONFIGS_DIR.glob("**/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_preset_validates(path):
    tree = read_yaml(path)
    loader = (load_sweep_config if "sweep" in tree else load_search_config if "search" in tree
              else load_compare_config if "compare" in tree else load_config)
    config = loader(path)
    assert config.benchmark.name in BENCHMARKS
    specs = [config.model.spec]
    if "sweep" in tree:
        specs = [s for s, _ in config.sweep.capacities.specs()] if hasattr(
            config.sweep.capacities, "specs") else list(config.sweep.capacities)
    for spec in specs:
        build_model(spec, (3, 32, 32), {"head": 2})


SMOKED = [p for p in CONFIGS if "smoke" in read_yaml(p)]
COMMANDS = {"sweep": "sweep", "search": "search", "compare": "compare"}


def test_every_paper_preset_has_a_smoke_variant():
    names = {p.name for p in SMOKED}
    assert {p.name for p in CONFIGS if p.name.startswith(("paper_", "taskonomy", "nyuv2",
                                                            "cityscapes"))} <= names
    assert {"nyuv2.yaml", "cityscapes.yaml"} <= names
    assert "cifar10_stl10.yaml" in names


@pytest.fixture(scope="module")
def smoked(tmp_path_factory):
    """Runs a preset's smoke variant once in this module (the many-objective test reads the
    same run: ~18 s for DomainNet's here) and gives its output folder and printed text."""
    runs: dict[Path, tuple[Path, str]] = {}

    def run(path: Path) -> tuple[Path, str]:
        if path not in runs:
            tree = read_yaml(path)
            command = next((c for c in COMMANDS if c in tree), "train")
            out = tmp_path_factory.mktemp(path.stem) / "out"
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = main([command, str(path), "--smoke", "--out", str(out), "--quiet"])
            assert code in (0, None)
            runs[path] = out, printed.getvalue()
        return runs[path]

    return run


@pytest.mark.parametrize("path", SMOKED, ids=lambda p: p.name)
def test_smoke_variant_runs_on_the_fixture_on_cpu(path, smoked):
    out, printed = smoked(path)
    summaries = list(out.rglob("summary.json"))
    assert summaries, "the smoke run trained nothing"
    assert str(out) in printed


@pytest.mark.parametrize("name, objectives", [("paper_pbt_celeba.yaml", 40),
                                              ("paper_pbt_domainnet.yaml", 6)])
def test_many_objective_presets_smoke_at_full_size_with_16_members(name, objectives, smoked):
    assert "search" in read_yaml(CONFIGS_DIR / name)
    out, _ = smoked(CONFIGS_DIR / name)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["objectives"]) == objectives
    assert summary["population"] == 16 and len(summary["members"]) == 16
    assert len(summary["best_weights"]) == objectives
