"""Files written with ``torch.save``: checkpoints and search states, read and written here only
(torch is imported inside the functions, so readers of the store never pay for it).

They are read with ``weights_only=True``: torch's restricted unpickler builds tensors, numbers,
strings, lists, tuples, dicts and ``None`` and refuses any other global, so a crafted file can
not run code when it is loaded. Everything scalarize saves is of those types (the trainer's
model, optimiser, scheduler, method extra state, weights, history and RNG states; a search's
member states and policy RNG state and history), in every format it ever wrote, so no extra
global is allowed (:data:`SAFE_GLOBALS` is empty; a type added later goes there, scoped to the
load through ``torch.serialization.safe_globals``).
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_with

SAFE_GLOBALS: tuple[Any, ...] = ()  # types beyond torch's weights-only set that files hold

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_torch(path: Path, what: str, remedy: str) -> Any:
    """A ``torch.save`` file read with ``weights_only=True``; a file that is torn, foreign or
    asks to run code is one :class:`ScalarizeError` line naming it and ``remedy``."""
    import torch

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            # a file in torch's legacy (non-zip) format draws a protocol warning: it is refused
            # or read all the same, and the error below says which
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused by the weights-only unpickler, torn, or foreign
        asked = _GLOBAL.search(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if asked:
            raise ScalarizeError(
                f"{what} {path} is unreadable: it asks for {asked.group(1)}, which no {what} "
                f"scalarize writes holds, so it could be unsafe and was refused without running "
                f"anything; {remedy}") from None
        raise ScalarizeError(f"{what} {path} is unreadable ({type(exc).__name__}): torn, or not "
                             f"a {what} scalarize wrote (nothing in it was run); {remedy}"
                             ) from None


def save_torch(path: Path, state: Any) -> None:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    try:
        atomic_write_with(path, lambda tmp: torch.save(state, tmp))
    except RuntimeError as exc:  # torch's writer reports a full disk as a RuntimeError
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "write failed"
        raise ScalarizeError(f"cannot write {path} ({reason}); is the disk full? free some "
                             "space or choose another --out") from None
