"""Safe file writes shared by every layer: atomic replacement and flushed appends.

A write either lands whole or not at all (temporary file in the same folder, fsync, rename), and
an append is flushed and fsynced before it returns, so a kill loses at most the line being
written. Readers of JSON lines ignore a torn last line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where generated data and fixtures are cached: ``$SCALARIZE_CACHE`` or
    ``~/.cache/scalarize``."""
    return Path(os.environ.get("SCALARIZE_CACHE", Path.home() / ".cache" / "scalarize"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode())


def atomic_write_with(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary path)`` (e.g. ``torch.save``) and rename the result to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON line per record to ``path`` and flush them to disk."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    if not text:
        return
    with open(path, "a") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with ``records``, one JSON line each."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_lines(path: Path) -> list[Any]:
    """All complete JSON lines of ``path`` (none when it is missing; a torn last line from a
    kill is ignored)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records
