"""The report page as a reader sees it, laid out by a real headless Chromium (kaleido 0.2.1's,
driven as ``headless.py`` explains; the ``dev`` extra installs it, and only its absence skips
these tests): no table is wider than the page or than its container, the page never scrolls
sideways, images fit, and no cell reads ``nan``."""

from __future__ import annotations

import re

import pytest

from scalarize.report import build_report
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search
from scalarize.studies.sweep import load_sweep_config, run_sweep
from tests.conftest import tiny_study
from tests.report import headless

pytest.importorskip("kaleido", reason="the headless browser comes with the dev extra")

# one seed (intervals of one value), two capacities, conflict probes
SWEEP = tiny_study(depth=[1, 2], width=[8], seeds=[0], train={"epochs": 2},
                   probes={"conflicts": {"every": 1}})
SEARCH = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count, size]
  options: {n_train: 64, n_val: 16, n_test: 16, image_size: 16}
model: {spec: vit-d1-w8-p8}
train: {epochs: 2, batch_size: 32, device: cpu}
search: {strategy: mopbt, population: 3, interval: 1}
"""
WIDTHS = (1280, 800)  # a laptop window, and a narrow one where wide tables used to overflow
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    """The HTML of a sweep's report (capacity and conflicts sections) and a search's."""
    root = tmp_path_factory.mktemp("store")
    (root / "sweep.yaml").write_text(SWEEP)
    run_sweep(load_sweep_config(root / "sweep.yaml"), root / "sweep", progress=False)
    (root / "search.yaml").write_text(SEARCH)
    run_search(load_search_config(root / "search.yaml"), root / "search", progress=False)
    return {name: build_report(root / name)[0].read_text() for name in ("sweep", "search")}


@pytest.fixture(scope="module")
def browser():
    launcher = headless.chromium()
    assert launcher is not None
    return launcher


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["sweep", "search"])
def test_no_table_is_wider_than_the_page(pages, browser, name, width):
    layout = headless.measure(browser, pages[name], width=width)
    assert "HeadlessChrome" in layout["user_agent"]
    assert layout["inner_width"] == width
    assert layout["scroll_width"] <= width, "the page scrolls sideways"
    assert layout["tables"], "the report has tables"
    body = layout["body"]
    for table in layout["tables"]:
        box, container = table["table"], table["container"]
        assert container["left"] - 0.5 <= box["left"] and box["right"] <= container["right"] + 0.5
        assert body["left"] - 0.5 <= container["left"] and container["right"] <= body["right"] + 0.5
        assert table["container_scroll_width"] <= table["container_client_width"]
    for image in layout["images"]:
        assert body["left"] - 0.5 <= image["left"] and image["right"] <= body["right"] + 0.5


@pytest.mark.parametrize("name", ["sweep", "search"])
def test_no_cell_reads_nan(pages, browser, name):
    cells = headless.measure(browser, pages[name])["cells"]
    assert cells
    assert not [c for c in cells if NAN.search(c)]
    if name == "sweep":  # one seed: the intervals say n=1 instead of nan
        assert any("(n=1)" in c for c in cells)


def test_the_page_draws_to_an_image(pages, browser, tmp_path):
    png = headless.screenshot(browser, pages["sweep"], tmp_path / "page.png", width=1000)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1000 and height > 900  # the whole page, not just one window
