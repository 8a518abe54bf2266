"""Search outputs at many objectives stay readable: a real 16-member PBT search over CelebA's
40 attributes (the smoke fixture, seconds) through the CLI and the report, against a
two-objective search whose outputs keep one column and one plot per objective. The CLI and the
report share the 40-objective search, so both are tested here."""

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scalarize.analysis.search import (
    MANY_OBJECTIVES,
    effective_objectives,
    members_display,
    members_frame,
    weights_text,
)
from scalarize.cli import main
from scalarize.report import build_report
from scalarize.report.search_weights import member_order

CONFIGS = Path(__file__).parent.parent.parent / "configs"
FEW = ["model.spec=vit-d1-w16-p8", "train.epochs=2", "train.batch_size=32",
       "train.device=cpu", "search.population=4",
       "benchmark.options={n_train: 96, n_val: 32, n_test: 32, image_size: 16}"]


def _search(out: Path, *argv: str) -> str:
    """``scalarize search ... --out out --quiet``; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["search", *argv, "--out", str(out), "--quiet"]) in (0, None)
    return printed.getvalue()


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("many") / "celeba"
    return out, _search(out, str(CONFIGS / "paper_pbt_celeba.yaml"), "--smoke")


@pytest.fixture(scope="module")
def few(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("few") / "shapes"
    return out, _search(out, str(CONFIGS / "shapes_pbt.yaml"), *FEW)


def _members_header(markdown: str) -> list[str]:
    """The column names of the report's members table."""
    lines = markdown.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("**members ("))
    return [c.strip() for c in lines[at + 2].strip("|").split("|")]


def test_effective_objectives_is_the_count_for_uniform_and_one_for_a_one_hot():
    for t in (2, 10, 40):
        assert effective_objectives(np.full(t, 1 / t)) == t
    assert effective_objectives([0, 0, 1, 0]) == 1
    assert 1 < effective_objectives([0.7, 0.2, 0.1]) < 3
    assert np.isnan(effective_objectives([0.0, 0.0]))


def test_weights_text_names_every_weight_when_few_and_the_largest_when_many():
    names = [f"t{i}" for i in range(MANY_OBJECTIVES)]
    assert weights_text(names, [1 / len(names)] * len(names)).count("=") == len(names)
    names = [f"t{i}" for i in range(40)]
    weights = np.linspace(0, 1, 40) / np.linspace(0, 1, 40).sum()
    text = weights_text(names, weights)
    assert text.startswith("t39=0.050, t38=0.049, t37=0.047")
    assert text.count("=") == 5 and text.endswith("… and 35 more (all in summary.json)")


def test_members_display_replaces_the_weight_columns_past_the_threshold():
    uniform = pd.DataFrame({"member": [0, 1], "val_avg_acc": [0.5, 0.6],
                            **{f"w_o{i}": [1 / 40, 1 / 40 if i else 1.0] for i in range(40)}})
    shown = members_display(uniform)
    assert list(shown.columns) == ["member", "val_avg_acc", "top_weights",
                                   "effective_objectives"]
    assert shown.effective_objectives[0] == 40
    assert shown.top_weights[1].startswith("o0 1.000, o1 0.025")
    few = uniform[["member", *[f"w_o{i}" for i in range(MANY_OBJECTIVES)]]]
    assert members_display(few) is few
    assert member_order(uniform) == [1, 0]


def test_the_cli_prints_short_lines_at_40_objectives(many):
    out, printed = many
    lines = printed.splitlines()
    assert max(map(len, lines)) <= 200
    assert "top_weights" in lines[0] and "effective_objectives" in lines[0]
    assert not any(column.startswith("w_") for column in lines[0].split())
    assert any(line.startswith("final weights, largest first: ") and
               line.endswith("… and 35 more (all in summary.json)") for line in lines)
    frame = members_frame(out)  # the full data stays for pandas users
    assert sum(c.startswith("w_") for c in frame.columns) == 40 and len(frame) == 16


def test_the_cli_keeps_one_column_per_objective_when_few(few):
    _, printed = few
    assert "w_shape" in printed and "w_count" in printed and "top_weights" not in printed
    assert "; final weights shape=" in printed


def test_the_report_at_40_objectives_has_a_compact_table_and_heatmaps(many):
    out, _ = many
    _, md = build_report(out)
    text = md.read_text()
    header = _members_header(text)
    assert "top_weights" in header and "effective_objectives" in header
    assert not any(c.startswith("w_") for c in header)
    assert "… and 35 more (all in summary.json)" in text
    figures = out / "report" / "figures"
    assert not (figures / "search-schedules.png").exists()
    with Image.open(figures / "search-weights.png") as image:
        width, height = image.size
    assert 600 < width < 4000 and 500 < height < 4000
    assert "figures/search-weights.png" in text


def test_the_report_keeps_weight_columns_and_schedules_when_few(few):
    out, _ = few
    _, md = build_report(out)
    header = _members_header(md.read_text())
    assert "w_shape" in header and "w_count" in header and "top_weights" not in header
    figures = out / "report" / "figures"
    assert (figures / "search-schedules.png").exists()
    assert not (figures / "search-weights.png").exists()
