"""``--smoke``: run a preset on a tiny fixture of its data set, on the CPU, in seconds.

The paper's presets need the real data sets and GPUs. ``scalarize train|sweep|compare|search
CONFIG --smoke`` checks that a preset runs end to end anyway: it writes the benchmark's fixture
(:mod:`scalarize.benchmarks.fixtures`, the official on-disk formats) once under
``$SCALARIZE_CACHE/smoke/<benchmark>``, points ``benchmark.options`` at it, trains on the CPU in
fp32 for two short epochs, then applies the preset's own ``smoke:`` overrides (a smaller model,
a smaller grid or population) and finally the user's. Benchmarks built in (``shapes``, ``npz``)
keep their data.

Example:
    >>> from scalarize.config import load_config
    >>> config = load_config("configs/taskonomy_dense.yaml",
    ...                      smoke_overrides("configs/taskonomy_dense.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from scalarize.benchmarks.fixtures import FIXTURES, write_fixture
from scalarize.config import read_yaml
from scalarize.files import cache_dir

CPU_RUN = ["train.device=cpu", "train.precision=fp32", "train.epochs=2", "train.batch_size=8",
           "train.eval_batch_size=64", "train.warmup_epochs=0"]
OPTIONS_FILE = "fixture-options.json"


def fixture_options(name: str) -> dict[str, object]:
    """The ``benchmark.options`` that read benchmark ``name``'s fixture, writing the fixture on
    first use (atomically: a half-written fixture is never left behind)."""
    root = cache_dir() / "smoke" / name
    if not (root / OPTIONS_FILE).is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root.parent))
        try:
            options = write_fixture(name, tmp)
            (tmp / OPTIONS_FILE).write_text(json.dumps({**options, "root": "."}))
            shutil.rmtree(root, ignore_errors=True)
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    options = json.loads((root / OPTIONS_FILE).read_text())
    return {**options, "root": str(root)}


def smoke_overrides(path: Path | str) -> list[str]:
    """The overrides that turn the preset at ``path`` into its smoke run."""
    tree = read_yaml(Path(path))
    name = (tree.get("benchmark") or {}).get("name", "shapes")
    overrides = list(CPU_RUN)
    if name in FIXTURES.names():
        overrides += [f"benchmark.options.{k}={json.dumps(v)}"
                      for k, v in fixture_options(name).items()]
    return [*overrides, *(tree.get("smoke") or [])]
