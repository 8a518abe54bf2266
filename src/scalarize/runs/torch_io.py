"""Files written with ``torch.save``: checkpoints and search states, read and written here only
(torch is imported inside the functions, so readers of the store never pay for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_with


def load_torch(path: Path, what: str, remedy: str) -> Any:
    """A ``torch.save`` file (torch imported only here: readers of the store never pay it)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torn or foreign: say so in one line
        raise ScalarizeError(f"{what} {path} is unreadable ({type(exc).__name__}); {remedy}"
                             ) from None


def save_torch(path: Path, state: Any) -> None:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    atomic_write_with(path, lambda tmp: torch.save(state, tmp))
