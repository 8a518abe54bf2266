"""One folder per run: ``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``checkpoint.pt``.

Metrics are appended one JSON line per epoch and flushed; the checkpoint and the summary are
written atomically (temporary file + rename), so a kill loses at most the current epoch and
never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from scalarize.errors import ScalarizeError

CONFIG, METRICS, SUMMARY, CHECKPOINT = "config.yaml", "metrics.jsonl", "summary.json", \
    "checkpoint.pt"


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


def atomic_torch_save(path: Path, state: Any) -> None:
    """``torch.save`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and flush it to disk."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with ``records``, one JSON line each."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete records of a JSON-lines file (a torn last line from a kill is ignored)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


class RunDir:
    """The folder of one run and the files in it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        """True when a run was started here (its config was written)."""
        return (self.path / CONFIG).is_file()

    @property
    def is_complete(self) -> bool:
        return (self.path / SUMMARY).is_file()

    def prepare(self, config_yaml: str, resume: bool = False, overwrite: bool = False,
                same: Callable[[Any], bool] | None = None) -> bool:
        """Create the folder for a new run, or check it for ``resume``.

        Returns True when resuming an existing run. An existing run is never touched unless
        ``resume`` (same config required: ``same(saved tree)``, by default equality with
        ``config_yaml``'s tree) or ``overwrite`` is given.
        """
        if self.exists and not (resume or overwrite):
            raise ScalarizeError(
                f"run folder {self.path} already exists; pass --resume to continue it or "
                "--overwrite to replace it"
            )
        if self.exists and resume:
            saved = (self.path / CONFIG).read_text()
            is_same = same or (lambda tree: tree == yaml.safe_load(config_yaml))
            if not is_same(yaml.safe_load(saved)):
                raise ScalarizeError(
                    f"cannot resume {self.path}: its config.yaml differs from this config; "
                    "choose another --name or pass --overwrite"
                )
            return True
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / CONFIG, config_yaml)
        return False

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line to ``metrics.jsonl`` and flush it to disk."""
        append_jsonl(self.path / METRICS, record)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete metric records (a torn last line from a kill is ignored)."""
        return read_jsonl(self.path / METRICS)

    def truncate_metrics(self, epochs_done: int) -> None:
        """Keep only records of the first ``epochs_done`` epochs (used when resuming)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epochs_done]
        write_jsonl(self.path / METRICS, kept)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically replace ``checkpoint.pt`` with ``state``."""
        atomic_torch_save(self.path / CHECKPOINT, state)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, or ``None`` when the run has none yet."""
        path = self.path / CHECKPOINT
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a checkpoint torn by something other than us
            raise ScalarizeError(
                f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart "
                "the run or pass --overwrite"
            ) from None

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.path / SUMMARY, json.dumps(summary, indent=2) + "\n")

    def read_summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY
        return json.loads(path.read_text()) if path.is_file() else None

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / CONFIG).read_text())


def finished_runs(folder: Path, manifest_name: str, command: str
                  ) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """A study folder's manifest and ``(planned run, summary)`` for each finished run."""
    path = folder / manifest_name
    if not path.is_file():
        raise ScalarizeError(f"{folder} holds no {manifest_name}; run '{command}' into it first")
    manifest = json.loads(path.read_text())
    done = []
    for run in manifest["runs"]:
        summary = RunDir(folder / run["name"]).read_summary()
        if summary is not None:
            done.append((run, summary))
    return manifest, done
