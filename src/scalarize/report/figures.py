"""Figure plumbing shared by the report sections: a headless backend and one way to save."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on servers and in CI: never ask for a display
import matplotlib.pyplot as plt


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Lay out, write as PNG, close; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["plt", "save_figure"]
