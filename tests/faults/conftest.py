"""The harness of the fault battery: run the command line in-process, check that an error is
one line naming its culprit, and that no file outside the expected ones changed.

Every case in ``tests/faults`` asserts three things: the exit status, that stderr is exactly
one ``scalarize: error: ...`` line naming the culprit (no traceback), and that the files under
the watched folder are the same before and after (or changed only where allowed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from scalarize.cli import main

TINY = ["model.spec=vit-d1-w16-p8", "train.epochs=1", "train.batch_size=32",
        "train.device=cpu", "benchmark.options={n_train: 64, n_val: 16, n_test: 16, "
        "image_size: 16}"]


@dataclass
class Result:
    status: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """``cli(*argv)``: run ``scalarize argv`` in this process; a :class:`Result`."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


def assert_one_line_error(result: Result, *culprits: str, status: int = 2) -> None:
    """Exit ``status``, stderr one ``scalarize: error:`` line that names every culprit."""
    assert result.status == status, (result.status, result.err[-2000:])
    assert "Traceback" not in result.err, result.err[-2000:]
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("scalarize"), lines[0]
    for culprit in culprits:
        assert culprit.lower() in lines[0].lower(), (culprit, lines[0])


def snapshot(root: Path | str) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: relative path -> (sha256 of its bytes, mode)."""
    root = Path(root)
    files = {}
    if not root.exists():
        return files
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[str(path.relative_to(root))] = (digest, path.stat().st_mode)
    return files


def assert_unchanged(before: dict[str, tuple[str, int]], root: Path | str,
                     allowed: Iterable[str] = ()) -> None:
    """The files under ``root`` equal ``before``, except paths starting with ``allowed``."""
    after = snapshot(root)
    prefixes = tuple(allowed)

    def kept(files: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
        return {k: v for k, v in files.items() if not (prefixes and k.startswith(prefixes))}

    assert kept(after) == kept(before)


@pytest.fixture
def config_file(tmp_path):
    """``config_file(text)``: a YAML config written under tmp_path/configs."""

    def write(text: str = "seed: 0\n", name: str = "c.yaml") -> Path:
        folder = tmp_path / "configs"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(text)
        return path

    return write
