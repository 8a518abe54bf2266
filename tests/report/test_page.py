"""The report page as a reader sees it, laid out by a real headless Chromium (kaleido 0.2.1's,
driven as ``headless.py`` explains; the ``dev`` extra installs it, and only its absence skips
these tests), at 1400 and at 800 CSS pixels: no table is wider than the page or than its
container, the page never scrolls sideways, images fit, no header breaks inside a word, and
no cell reads ``nan``; the demo's own report among the pages, drawn to screenshots."""

from __future__ import annotations

import re

import pytest

from scalarize.report import build_report
from scalarize.report.page import CSS
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
WIDTHS = (1400, 800)  # a laptop window, and a narrow one where wide tables used to overflow
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, demo_folder) -> dict[str, str]:
    """The HTML of a sweep's report (capacity and conflicts sections), a search's and the
    demo's (every section the demo's folder has)."""
    root = tmp_path_factory.mktemp("store")
    (root / "sweep.yaml").write_text(SWEEP)
    run_sweep(load_sweep_config(root / "sweep.yaml"), root / "sweep", progress=False)
    (root / "search.yaml").write_text(SEARCH)
    run_search(load_search_config(root / "search.yaml"), root / "search", progress=False)
    built = {name: build_report(root / name)[0].read_text() for name in ("sweep", "search")}
    return {**built, "demo": (demo_folder.folder / "report" / "report.html").read_text()}


@pytest.fixture(scope="module")
def browser():
    launcher = headless.chromium()
    assert launcher is not None
    return launcher


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["sweep", "search", "demo"])
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
    assert not layout["broken_headers"], "a column name breaks inside a word"


def test_the_probe_sees_a_header_broken_inside_a_word(browser):
    """The broken-header check can fail: a header squeezed with the old CSS (break anywhere)
    is caught, and the same header with the report's CSS is not."""
    head = "<th>best_<wbr>distance_<wbr>from_<wbr>uniform</th><th>x</th>"
    old = ("<style>th{overflow-wrap:anywhere}</style><div style='width:60px'><table><tr>"
           f"{head}</tr></table></div>")
    assert headless.measure(browser, old, width=400)["broken_headers"]
    page = pages_css(f"<div class='table-wrap' style='width:60px'><table><tr>{head}</tr>"
                     "</table></div>")
    assert not headless.measure(browser, page, width=400)["broken_headers"]


def pages_css(body: str) -> str:
    """``body`` under the report's own style sheet."""
    return f"<html><head><style>{CSS}</style></head><body>{body}</body></html>"


@pytest.mark.parametrize("name", ["sweep", "search"])
def test_no_cell_reads_nan(pages, browser, name):
    cells = headless.measure(browser, pages[name])["cells"]
    assert cells
    assert not [c for c in cells if NAN.search(c)]
    if name == "sweep":  # one seed: the intervals say n=1 instead of nan
        assert any("(n=1)" in c for c in cells)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_page_draws_to_an_image_as_wide_as_the_window(pages, browser, width,
                                                               tmp_path_factory):
    """Screenshots of the demo's report at both widths (kept in pytest's temporary folder to
    look at): as wide as the window (nothing overflows it) and the whole page long."""
    folder = tmp_path_factory.mktemp("screenshots")
    png = headless.screenshot(browser, pages["demo"], folder / f"demo-{width}.png", width=width)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    shot_width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert shot_width == width and height > 900  # the whole page, not just one window
    layout = headless.measure(browser, pages["demo"], width=width)
    assert layout["scroll_width"] <= layout["inner_width"]
