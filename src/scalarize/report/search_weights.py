"""The weights of a search at many objectives (past
:data:`~scalarize.analysis.search.MANY_OBJECTIVES`), as heatmaps instead of one plot per
objective: every member's final weights (objectives × members) beside the selected member's
weights per epoch (objectives × epochs), one row per objective, readable at 40 rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from scalarize.report.figures import plt, save_figure

LABEL_SIZE = 6.5  # points: 40 objective names fit one row each
ROW_INCHES = 0.13  # height of one objective's row
MAX_WIDTH = 14.0  # inches: at most ~1540 px however many members and epochs


def member_order(members: pd.DataFrame) -> list[int]:
    """Members by held-out average accuracy, best first (diverged ones last; ties: by
    number), as the selection ranks them.

    Example:
        >>> member_order(pd.DataFrame({"member": [0, 1, 2], "val_avg_acc": [0.5, None, 0.7]}))
        [2, 0, 1]
    """
    ranked = members.sort_values(["val_avg_acc", "member"], ascending=[False, True],
                                 na_position="last", kind="stable")
    return [int(m) for m in ranked.member]


def _schedule(pop: pd.DataFrame, member: int, columns: list[str]) -> tuple[np.ndarray, list]:
    """The weights of ``member`` per epoch (objectives × epochs) and those epochs."""
    rows = pop[pop.member == member].sort_values("epoch", kind="stable")
    rows = rows.drop_duplicates("epoch", keep="last")  # a restored trial may repeat an epoch
    return rows[columns].to_numpy(dtype=np.float64).T, rows.epoch.tolist()


def weights_heatmap_figure(members: pd.DataFrame, pop: pd.DataFrame, objectives: list[str],
                           best: int, path: Path) -> Path:
    """Left: the final weight (colour) of each objective (row) for each member (column,
    ordered by held-out average accuracy, best left; the selected member ``best`` boxed and
    its label bold). Right: the selected member's weight of each objective during each epoch.
    One colour scale for both; the figure's height grows with the number of objectives."""
    columns = [f"w_{o}" for o in objectives]
    order = member_order(members)
    final = members.set_index("member").loc[order, columns].to_numpy(dtype=np.float64).T
    schedule, epochs = _schedule(pop, best, columns)
    top = float(np.nanmax([np.nanmax(final), np.nanmax(schedule, initial=0.0)]))
    width = min(MAX_WIDTH, 4.0 + 0.25 * (len(order) + max(len(epochs), 6)))
    height = max(3.0, ROW_INCHES * len(objectives) + 1.4)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(width, height), sharey=True,
        gridspec_kw={"width_ratios": [max(len(order), 4), max(len(epochs), 6)]})
    image = left.imshow(final, aspect="auto", cmap="viridis", vmin=0.0, vmax=top,
                        interpolation="nearest")
    left.set_xticks(range(len(order)), [f"m{m}" for m in order], rotation=90,
                    fontsize=LABEL_SIZE)
    if best in order:
        at = order.index(best)
        left.add_patch(Rectangle((at - 0.5, -0.5), 1, len(objectives), fill=False,
                                 edgecolor="tab:red", lw=1.5))
        left.get_xticklabels()[at].set_fontweight("bold")
    left.set_yticks(range(len(objectives)), objectives, fontsize=LABEL_SIZE)
    left.set_xlabel("member (best held-out average accuracy left)", fontsize=8)
    left.set_title("final weights of the members, by held-out accuracy", fontsize=8)
    if epochs:
        right.imshow(schedule, aspect="auto", cmap="viridis", vmin=0.0, vmax=top,
                     interpolation="nearest",
                     extent=(epochs[0] - 0.5, epochs[-1] + 0.5, len(objectives) - 0.5, -0.5))
    right.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    right.tick_params(axis="x", labelsize=LABEL_SIZE)
    right.set_xlabel("epoch", fontsize=8)
    right.set_title(f"selected member m{best}, per epoch", fontsize=8)
    colourbar = fig.colorbar(image, ax=right, fraction=0.12, pad=0.03)
    colourbar.ax.tick_params(labelsize=LABEL_SIZE)
    colourbar.set_label("weight", fontsize=8)
    return save_figure(fig, path)


__all__ = ["member_order", "weights_heatmap_figure"]
