"""A demo-like folder for the report's tests: ``scalarize demo`` itself (``demo.main``) on a
tiny budget, two capacities, with what it printed."""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from scalarize import demo


@dataclass(frozen=True)
class DemoFolder:
    """The demo's folder and its printed output."""

    folder: Path
    printed: str


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory) -> DemoFolder:
    tiny = copy.deepcopy(demo.DEMO)
    tiny["benchmark"]["options"].update({"n_train": [48, 16], "n_val": 16, "n_test": 32,
                                         "image_size": 16})
    tiny["train"]["epochs"] = 3
    tiny["probes"]["conflicts"]["every"] = 1
    tiny["sweep"]["capacities"]["axes"]["width"] = [0.125, 0.25]  # the PBT's is the second
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCALARIZE_CACHE", str(tmp_path_factory.mktemp("demo-cache")))
        patch.setenv("SCALARIZE_JOBS", "1")
        patch.setattr(demo, "DEMO", tiny)
        patch.setattr(demo, "PBT_SEARCH", {**demo.PBT_SEARCH, "interval": 1})
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            demo.main(root / "demo", progress=False)
    return DemoFolder(root / "demo", printed.getvalue())
