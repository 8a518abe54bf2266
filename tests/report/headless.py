"""A real headless browser for the report's layout tests, installed from PyPI alone.

Playwright's and pyppeteer's wheels hold no browser (they download one from a CDN at install
time, which this project's machines and CI cannot reach), and no maintained PyPI package ships a
general headless Chromium. ``kaleido`` 0.2.1 (plotly's figure exporter, the ``dev`` extra) does
ship one: a headless Chromium 88 build whose page loads a script named by ``--plotlyjs`` and
then calls that script's ``Plotly.toImage`` with each request read on standard input. The
script ``layout_probe.js`` beside this file defines that function: it lays the report page out
in an iframe of a given width and answers with the page's measurements (Blink's own layout:
widths, bounding boxes, cell texts) or with a PNG of the page drawn through an SVG
``foreignObject``. The layout is Chromium's; only the driving goes through kaleido's door.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("layout_probe.js")
FLAGS = ("--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--disable-dev-shm-usage", "--disable-breakpad")


def chromium() -> Path | None:
    """The launcher of kaleido 0.2.1's bundled Chromium, or ``None`` when kaleido is absent."""
    spec = importlib.util.find_spec("kaleido")
    if spec is None or spec.origin is None:
        return None
    launcher = Path(spec.origin).parent / "executable" / "kaleido"
    if not launcher.is_file():
        raise RuntimeError(f"kaleido at {launcher.parent.parent} bundles no Chromium: the "
                           "layout tests need kaleido==0.2.1 (pip install -e '.[dev]')")
    return launcher


def _ask(launcher: Path, request: dict[str, Any], timeout: float = 120.0) -> str:
    """Send one request to a fresh browser; its answer's ``result`` text."""
    message = json.dumps({"data": {"data": [], "layout": request}, "format": "json"}) + "\n"
    proc = subprocess.run(
        [str(launcher), "plotly", *FLAGS, f"--plotlyjs={PROBE.as_uri()}"],
        input=message, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(lines) < 2:
        raise RuntimeError(f"headless Chromium gave no answer (status {proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    answer = json.loads(lines[-1])
    if answer.get("code") != 0 or answer.get("result") is None:
        raise RuntimeError(f"headless Chromium failed: {answer.get('message')}")
    return str(answer["result"])


def measure(launcher: Path, page: str, width: int = 1280, height: int = 900) -> dict[str, Any]:
    """The layout of ``page`` (HTML text) in a window ``width`` CSS pixels wide: the page's
    inner and scroll widths, each table's box and its container's, every image's box and the
    text of every table cell."""
    result: dict[str, Any] = json.loads(_ask(launcher, {"mode": "measure", "html": page,
                                                        "width": width, "height": height}))
    return result


def screenshot(launcher: Path, page: str, path: Path, width: int = 1280) -> Path:
    """A PNG of the whole of ``page`` laid out ``width`` CSS pixels wide, written to ``path``."""
    data_url = _ask(launcher, {"mode": "screenshot", "html": page, "width": width,
                               "height": 900})
    path.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
    return path
