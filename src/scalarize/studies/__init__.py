"""The multi-run commands: capacity sweeps, comparisons, the equal-compute search study,
replays, and where they meet the engines (:mod:`scalarize.studies.runner`)."""
