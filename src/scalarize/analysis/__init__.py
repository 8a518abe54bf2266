"""Analysis over the run store: multi-task gain, the capacity study, rank stability."""

from scalarize.analysis.capacity import (
    capacity_plane,
    capacity_trend,
    distance_from_uniform,
    gain_plane,
    load_sweep,
    per_capacity,
    rank_stability,
    selected_vs_uniform,
    summarize,
    transfer_regret,
    weighting_gains,
)
from scalarize.analysis.gain import multitask_gain
from scalarize.analysis.stats import mean_ci

__all__ = ["capacity_plane", "capacity_trend", "distance_from_uniform", "gain_plane",
           "load_sweep", "mean_ci", "multitask_gain", "per_capacity", "rank_stability",
           "selected_vs_uniform", "summarize", "transfer_regret", "weighting_gains"]
